"""Benchmark: end to end, MLLP in to delivered at a local HTTP sink, Switchboard
(SQLite and PostgreSQL) beside the Node-RED peer, side by side in one run.

Every target meets the same client (:mod:`bench.mllp_load`: the same messages, the same
number of lockstep connections) and delivers to the same HTTP sink process, and the
targets take turns within every round, the order reversed each round, so the machine's
noise hits them alike. The report gives the median of each figure over the rounds and
the median of the per-round ratios.

- The sink: with ``--peers DIR``, the harness's ``sink.py`` (an asyncio keep-alive HTTP
  sink that parses every JSON body); without, an equivalent one built in here
  (``python -m bench.delivery sink --port PORT``). One sink serves the whole run;
  Switchboard POSTs to ``/switchboard``, Node-RED to ``/adt``, ``/oru`` and ``/other``,
  and each target's deliveries are counted by path from the sink's ``GET /count``.
- ``switchboard-sqlite`` and ``switchboard-postgres``: ``switchboard serve`` in a
  subprocess, a fresh store each round (SQLite in WAL mode with synchronous=FULL; a
  private PostgreSQL cluster running with fsync on, a new database each round), with
  the configuration of ``tests/delivery_config.py``: the shipped mappings and schemas,
  the ``ehr-adt-feed`` MLLP listener on a free port, and one route sending every message
  as canonical JSON to the HTTP destination ``test-sink`` (the sink). After a warm-up
  whose delivery is let finish, the measured load; then the server is stopped and the
  store is read: every message of the load must have its journal entry and exactly one
  delivery with status ``delivered`` (distinct idempotency keys), and the exact
  receive-to-delivered latency of each is ``deliveries.delivered_at`` minus
  ``journal.received_at`` (p50 and p99 reported). The same latency from the
  ``switchboard_receive_to_delivered_seconds`` histogram on /metrics (before and after
  the load, interpolated within buckets as Prometheus' ``histogram_quantile`` does) is
  kept beside it in the JSON as a cross-check.
- ``node-red`` (with ``--peers DIR``): the harness's ``setup.sh`` once, then its flow
  started as its ``run.sh`` starts it, warmed up once. Its receive-to-delivered latency
  is n/a: it keeps no timestamps, and its POST bodies carry none, so the sink cannot
  tell when a message was received.

Figures: delivered msgs/s (messages over the time from the first send until the sink
had counted the last of their POSTs), ACK msgs/s and ACK p50/p99 from the load client,
receive-to-delivered p50/p99 (Switchboard), and CPU per message of the target's
processes (Switchboard: serve and its pipeline worker processes). Target: at least
2,000 msgs/s delivered on SQLite; goal: match Node-RED.

Node-RED ACKs once routing is decided and keeps nothing (an ACKed message exists only in
memory until its POST completes); Switchboard commits each message to its journal before
it ACKs and each delivery intent to its outbox before it sends it.

    python -m bench.delivery [--messages 20000] [--connections 4] [--rounds 3]
                             [--peers DIR] [--json FILE] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.mllp_load import DEFAULT_CORPUS, Template, load_corpus, percentile
from bench.serving import (
    BenchError,
    DurableCluster,
    Followed,
    Process,
    Processes,
    http_get,
    install_node_red,
    listening,
    load_and_follow,
    median,
    median_ratio,
    num,
    sink_count,
    start_node_red,
    start_sink,
    start_switchboard,
    terminate_on_sigterm,
    wait_ready,
    workspace,
)
from tests.ports import free_port

LABEL = "delivery"
SQLITE, POSTGRES, NODE_RED = "switchboard-sqlite", "switchboard-postgres", "node-red"
SWITCHBOARD_PATH = "/switchboard"
DESTINATION = "test-sink"  # tests/delivery_config.py's HTTP destination
FIGURES = ("delivered_msgs_per_s", "e2e_p50_ms", "e2e_p99_ms", "ack_msgs_per_s",
           "ack_p50_ms", "ack_p99_ms", "cpu_ms_per_msg")
TARGET_MSGS_PER_S = 2_000.0
SINK_POLL = 0.05  # the sink is not the process under test
RECORD_TIMEOUT = 60.0


# ---- the sink, and what it counted -------------------------------------------------


def sink_posts(count_url: str, switchboard: bool) -> tuple[int, float]:
    """(POSTs counted for Switchboard's path, or for every other path, 0)."""
    counts = sink_count(count_url)
    ours = int(counts.get("by_path", {}).get(SWITCHBOARD_PATH, 0))
    return (ours if switchboard else int(counts["posts"]) - ours), 0.0


class _SinkProtocol(asyncio.Protocol):
    """The built-in sink: HTTP/1.1 keep-alive, every POST answered 200 and counted by
    path, its body parsed as JSON as the harness's sink does (bad_body: not JSON)."""

    def __init__(self, stats: dict[str, Any]) -> None:
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while True:  # every complete (possibly pipelined) request in the buffer
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].split(b"\r\n")
            parts = lines[0].split(b" ")
            length = 0
            for line in lines[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            if len(parts) < 3 or len(self.buffer) < end + 4 + length:
                if len(parts) < 3:
                    self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                         b"Connection: close\r\n\r\n")
                    self.transport.close()
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            self.handle(parts[0], parts[1].decode("ascii", "replace"), body)

    def handle(self, method: bytes, path: str, body: bytes) -> None:
        assert self.transport is not None
        stats = self.stats
        if method == b"POST":
            stats["posts"] += 1
            stats["by_path"][path] = stats["by_path"].get(path, 0) + 1
            try:
                json.loads(body)
            except ValueError:
                stats["bad_body"] += 1
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                                 b"Connection: keep-alive\r\n\r\n")
        elif method == b"GET" and path == "/count":
            payload = json.dumps(stats).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: " + str(len(payload)).encode()
                                 + b"\r\nConnection: keep-alive\r\n\r\n" + payload)
        else:
            self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                 b"Connection: keep-alive\r\n\r\n")


async def _serve_sink(port: int) -> None:
    stats: dict[str, Any] = {"posts": 0, "by_path": {}, "bad_body": 0}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _SinkProtocol(stats), "127.0.0.1", port,
                                      reuse_address=True, backlog=1024)
    stop = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    print(f"sink listening on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()
    print(f"sink final {json.dumps(stats)}", flush=True)


def sink_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery sink",
                                     description="the built-in HTTP sink (127.0.0.1 only)")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_serve_sink(parser.parse_args(argv).port))
    return 0


# ---- Switchboard's own account: /metrics and the store ------------------------------


def metrics_text(base: str) -> str:
    status, body = http_get(base + "/metrics")
    if status != 200:
        raise BenchError(f"{base}/metrics answered {status}")
    return body.decode()


def delivered_total(text: str) -> int:
    prefix = f'switchboard_delivered_total{{connection="{DESTINATION}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return int(float(line[len(prefix):]))
    return 0


def histogram_buckets(text: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of the receive-to-delivered histogram."""
    start = "switchboard_receive_to_delivered_seconds_bucket{"
    buckets = []
    for line in text.splitlines():
        if line.startswith(start) and f'connection="{DESTINATION}"' in line:
            labels, value = line[len(start):].rsplit(" ", 1)
            bound = labels.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(value)))
    return sorted(buckets)


def histogram_quantile(share: float, before: list[tuple[float, float]],
                       after: list[tuple[float, float]]) -> float | None:
    """The ``share`` quantile (0..1) of what was observed between two scrapes, as
    Prometheus' histogram_quantile computes it: linear within the bucket it falls in,
    the highest finite bound when it falls in the +Inf bucket."""
    earlier = dict(before)
    counts = [(bound, count - earlier.get(bound, 0.0)) for bound, count in after]
    if not counts or counts[-1][1] <= 0:
        return None
    rank = share * counts[-1][1]
    lower, below = 0.0, 0.0
    for bound, cumulative in counts:
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


def wait_recorded(process: Process, base: str, expected: int) -> int:
    """Wait until /metrics counts ``expected`` deliveries (the sink counts a POST before
    the worker records its outcome); returns the count."""
    deadline = time.monotonic() + RECORD_TIMEOUT
    while True:
        count = delivered_total(metrics_text(base))
        if count >= expected or time.monotonic() > deadline or not process.alive:
            return count
        time.sleep(0.1)


def store_account(url: str, id_prefix: str) -> dict[str, Any]:
    """What the store says of the messages whose control id starts with ``id_prefix``:
    journal entries, deliveries by status, distinct idempotency keys and messages
    delivered, and the exact receive-to-delivered latency of each delivery."""
    from sqlalchemy import func, select

    from engine.store.database import open_engine, reader
    from engine.store.models import Delivery, JournalEntry

    engine = open_engine(url)
    try:
        mine = JournalEntry.control_id.startswith(id_prefix, autoescape=True)
        with reader(engine).connect() as connection:
            journal = connection.scalar(select(func.count()).select_from(JournalEntry)
                                        .where(mine))
            rows = connection.execute(
                select(Delivery.status, Delivery.idempotency_key, Delivery.journal_id,
                       JournalEntry.received_at, Delivery.delivered_at)
                .join(JournalEntry, Delivery.journal_id == JournalEntry.id).where(mine)
            ).all()
    finally:
        engine.dispose()
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    delivered = [row for row in rows if row.status == "delivered"]
    latencies = sorted((row.delivered_at - row.received_at).total_seconds() for row in delivered
                       if row.delivered_at is not None)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return {
        "journal_entries": journal, "deliveries": len(rows), "by_status": statuses,
        "delivered": len(delivered),
        "distinct_idempotency_keys": len({row.idempotency_key for row in delivered}),
        "messages_delivered": len({row.journal_id for row in delivered}),
        "e2e_p50_ms": None if p50 is None else round(p50 * 1e3, 2),
        "e2e_p99_ms": None if p99 is None else round(p99 * 1e3, 2),
        "e2e_max_ms": round(latencies[-1] * 1e3, 2) if latencies else None,
    }


# ---- one round of one target ------------------------------------------------------


@dataclass
class Run:
    """Everything a round needs."""

    args: argparse.Namespace
    corpus: list[Template]
    work: Path
    processes: Processes
    sink: Process
    count_url: str
    sink_url: str
    cluster: DurableCluster | None = None
    node_red: tuple[Process, int] | None = None

    @property
    def settle(self) -> float:
        """How long delivery may take to catch up once the ACKs are in."""
        return max(120.0, int(self.args.messages) / 20)

    def follow(self, port: int, messages: int, switchboard: bool,
               ) -> tuple[dict[str, Any], Followed]:
        def posts() -> tuple[int, float]:
            return sink_posts(self.count_url, switchboard)
        return asyncio.run(load_and_follow(port, messages, self.args.connections, self.corpus,
                                           posts, SINK_POLL, self.settle))


def _cpu(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def summarise(result: dict[str, Any], followed: Followed, cpu_s: float | None,
              sink_cpu_s: float | None, messages: int) -> dict[str, Any]:
    first_send = result.pop("first_send_perf_counter")
    summary: dict[str, Any] = {
        "delivered_msgs_per_s": None, "e2e_p50_ms": None, "e2e_p99_ms": None,
        "ack_msgs_per_s": result["msgs_per_s"],
        "ack_p50_ms": result["p50_ms"], "ack_p99_ms": result["p99_ms"],
        "cpu_ms_per_msg": None if cpu_s is None else round(cpu_s * 1e3 / messages, 3),
        "sink_cpu_ms_per_msg": None if sink_cpu_s is None
        else round(sink_cpu_s * 1e3 / messages, 3),
        "sink_posts": followed.counted,
        "load": result,
    }
    if followed.reached_at is not None and first_send is not None:
        seconds = followed.reached_at - first_send
        summary["delivered_seconds"] = round(seconds, 3)
        summary["delivered_msgs_per_s"] = round(followed.expected / seconds, 1)
    return summary


def run_switchboard(run: Run, target: str, round_number: int) -> dict[str, Any]:
    from tests.delivery_config import delivery_config

    args = run.args
    folder = run.work / f"{target}-{round_number}"
    folder.mkdir()
    database = f"bench_delivery_round_{round_number}"
    if target == SQLITE:
        url = f"sqlite:///{folder / 'sb.db'}"
    else:
        assert run.cluster is not None
        url = run.cluster.create(database)
    mllp_port, web = free_port(), free_port()
    config = delivery_config(folder / "config", run.sink_url + SWITCHBOARD_PATH,
                             mllp_port=mllp_port)
    process = start_switchboard(
        run.processes, target, config, url, web, folder,
        "--pipeline-workers", str(args.pipeline_workers),
        "--delivery-workers", str(args.delivery_workers))
    base = f"http://127.0.0.1:{web}"
    try:
        try:
            startup = wait_ready(process, base + "/readyz")
            if not listening(mllp_port):
                raise BenchError(f"{target}: nothing listens on MLLP port {mllp_port}")
            if args.warmup:
                _, warm = run.follow(mllp_port, args.warmup, switchboard=True)
                if warm.reached_at is None:
                    raise BenchError(f"{target}: the warm-up was not delivered in time")
            warm_recorded = wait_recorded(process, base, args.warmup)
            before = histogram_buckets(metrics_text(base))
            cpu_before = process.cpu_seconds(children=True)
            sink_before = run.sink.cpu_seconds()
            result, followed = run.follow(mllp_port, args.messages, switchboard=True)
            cpu = _cpu(cpu_before, process.cpu_seconds(children=True))
            sink_cpu = _cpu(sink_before, run.sink.cpu_seconds())
            recorded = wait_recorded(process, base, warm_recorded + followed.expected)
            after = histogram_buckets(metrics_text(base))
        finally:
            run.processes.stop(process)
        summary = summarise(result, followed, cpu, sink_cpu, args.messages)
        summary["startup_s"] = round(startup, 2)
        summary["recorded_delivered"] = recorded - warm_recorded
        summary["histogram_p50_ms"], summary["histogram_p99_ms"] = (
            None if value is None else round(value * 1e3, 2)
            for value in (histogram_quantile(share, before, after) for share in (0.5, 0.99)))
        account = store_account(url, result["id_prefix"])
        summary["store"] = account
        summary["e2e_p50_ms"], summary["e2e_p99_ms"] = account["e2e_p50_ms"], account[
            "e2e_p99_ms"]
        return summary
    finally:
        if target == POSTGRES and run.cluster is not None:
            with contextlib.suppress(Exception):
                run.cluster.drop(database)


def run_node_red(run: Run) -> dict[str, Any]:
    assert run.node_red is not None
    process, port = run.node_red
    if not process.alive:
        raise BenchError(f"{NODE_RED} is no longer running:\n{process.tail()}")
    cpu_before, sink_before = process.cpu_seconds(), run.sink.cpu_seconds()
    result, followed = run.follow(port, run.args.messages, switchboard=False)
    cpu = _cpu(cpu_before, process.cpu_seconds())
    sink_cpu = _cpu(sink_before, run.sink.cpu_seconds())
    return summarise(result, followed, cpu, sink_cpu, run.args.messages)


def incomplete(target: str, summary: dict[str, Any], messages: int) -> str | None:
    load = summary["load"]
    problems = []
    if load["aa"] != messages:
        problems.append(f"{load['aa']}/{messages} AA")
    if load["mismatched"]:
        problems.append(f"{load['mismatched']} ACKs with the wrong MSA-2")
    if load["error_count"]:
        problems.append(f"errors: {'; '.join(load['errors'][:3])}")
    if summary["delivered_msgs_per_s"] is None:
        problems.append(f"only {summary['sink_posts']} POSTs at the sink in time")
    store = summary.get("store")
    if store is not None:
        for name in ("journal_entries", "delivered", "distinct_idempotency_keys",
                     "messages_delivered"):
            if store[name] != messages:
                problems.append(f"store: {name} {store[name]}, not {messages}")
        if store["deliveries"] != store["delivered"]:
            problems.append(f"store: deliveries by status {store['by_status']}")
    return ", ".join(problems) or None


# ---- the run ----------------------------------------------------------------------


def start_shared(args: argparse.Namespace, work: Path, processes: Processes,
                 install: Any) -> tuple[Process, int]:
    """The one sink of the run: the harness's sink.py with --peers, else the built-in."""
    command = ([sys.executable, str(install.folder / "sink.py")] if install is not None
               else [sys.executable, "-m", "bench.delivery", "sink"])
    return start_sink(processes, command, work / "sink.log")


def benchmark(args: argparse.Namespace, processes: Processes, work: Path) -> dict[str, Any]:
    corpus = load_corpus(args.corpus)
    failures: list[dict[str, Any]] = []
    targets = [SQLITE] + ([] if args.skip_postgres else [POSTGRES])
    postgres_settings: dict[str, str] | None = None
    peers: dict[str, Any] | None = None
    install = None
    if args.peers:
        try:
            install = install_node_red(args.peers.resolve(), LABEL)
        except Exception as error:
            failures.append({"target": "peers", "round": None, "error": str(error)})
    sink, sink_port = start_shared(args, work, processes, install)
    sink_url = f"http://127.0.0.1:{sink_port}"
    run = Run(args, corpus, work, processes, sink, sink_url + "/count", sink_url)
    try:
        if not args.skip_postgres:
            try:
                run.cluster = DurableCluster()
                run.cluster.start()
                postgres_settings = run.cluster.settings()
            except Exception as error:  # no PostgreSQL here: measure the rest
                failures.append({"target": POSTGRES, "round": None, "error": str(error)})
                targets.remove(POSTGRES)
        if install is not None:
            peers = {"folder": str(install.folder), "node_red": install.node_red_version,
                     "node": install.node_version}
            try:
                (work / "peers").mkdir()
                run.node_red = start_node_red(processes, install, work / "peers", sink_url,
                                              NODE_RED)
                if args.peer_warmup:
                    _, warm = run.follow(run.node_red[1], args.peer_warmup, switchboard=False)
                    if warm.reached_at is None:
                        raise BenchError("node-red: the warm-up was not delivered in time")
                targets.append(NODE_RED)
            except Exception as error:
                failures.append({"target": NODE_RED, "round": None, "error": str(error)})
        rounds: list[dict[str, Any]] = []
        for number in range(1, args.rounds + 1):
            order = targets if number % 2 else targets[::-1]
            record: dict[str, Any] = {"round": number, "order": list(order), "results": {}}
            rounds.append(record)
            for target in order:
                print(f"{LABEL}: round {number}/{args.rounds}: {target}", file=sys.stderr,
                      flush=True)
                try:
                    summary = (run_node_red(run) if target == NODE_RED
                               else run_switchboard(run, target, number))
                except Exception as error:  # one target failing must not end the run
                    failures.append({"target": target, "round": number, "error": str(error)})
                    print(f"{LABEL}: {target} failed: {error}", file=sys.stderr)
                    continue
                record["results"][target] = summary
                problem = incomplete(target, summary, args.messages)
                if problem:
                    failures.append({"target": target, "round": number,
                                     "error": f"incomplete: {problem}"})
                print(f"{LABEL}:   {_line(target, summary)}", file=sys.stderr, flush=True)
        return _result(args, run, targets, rounds, failures, postgres_settings, peers)
    finally:
        if run.cluster is not None:
            with contextlib.suppress(Exception):
                run.cluster.destroy()


def _line(target: str, summary: dict[str, Any]) -> str:
    e2e = ("e2e n/a" if summary["e2e_p50_ms"] is None else
           f"e2e p50 {num(summary['e2e_p50_ms'], 1)} ms, p99 {num(summary['e2e_p99_ms'], 1)} ms")
    text = (f"{target}: delivered {num(summary['delivered_msgs_per_s'])} msgs/s, {e2e}; "
            f"ACK {num(summary['ack_msgs_per_s'])} msgs/s; {summary['sink_posts']} POSTs")
    store = summary.get("store")
    if store:
        text += (f"; store: {store['delivered']} delivered, "
                 f"{store['distinct_idempotency_keys']} keys")
    return text


def _result(args: argparse.Namespace, run: Run, targets: list[str],
            rounds: list[dict[str, Any]], failures: list[dict[str, Any]],
            postgres_settings: dict[str, str] | None,
            peers: dict[str, Any] | None) -> dict[str, Any]:
    samples = {
        target: {figure: [r["results"].get(target, {}).get(figure) for r in rounds]
                 for figure in (*FIGURES, "histogram_p50_ms", "histogram_p99_ms")}
        for target in targets
    }
    medians = {target: {figure: median(values) for figure, values in figures.items()}
               for target, figures in samples.items()}
    ratios: dict[str, float | None] = {}
    if SQLITE in samples:
        sqlite = samples[SQLITE]
        for other, figure, name in (
            (NODE_RED, "delivered_msgs_per_s", "delivered_sqlite_over_node_red"),
            (POSTGRES, "delivered_msgs_per_s", "delivered_sqlite_over_postgres"),
            (NODE_RED, "ack_msgs_per_s", "ack_sqlite_over_node_red"),
        ):
            if other in samples:
                ratios[name] = median_ratio(sqlite[figure], samples[other][figure])
    sqlite_delivered = medians.get(SQLITE, {}).get("delivered_msgs_per_s")
    return {
        "benchmark": "End to end: MLLP in to delivered at a local HTTP sink",
        "messages": args.messages, "connections": args.connections, "rounds": args.rounds,
        "warmup_messages": args.warmup, "peer_warmup_messages": args.peer_warmup,
        "pipeline_workers": args.pipeline_workers, "delivery_workers": args.delivery_workers,
        "corpus": str(args.corpus), "corpus_files": len(run.corpus),
        "sink": "peer sink.py" if peers else "built-in (bench.delivery sink)",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "postgres": postgres_settings, "peers": peers,
        "target": {"figure": "delivered_msgs_per_s", "target": SQLITE,
                   "at_least": TARGET_MSGS_PER_S, "median": sqlite_delivered,
                   "met": sqlite_delivered is not None
                   and sqlite_delivered >= TARGET_MSGS_PER_S},
        "median": medians, "median_ratios": ratios,
        "samples": samples, "runs": rounds, "failures": failures,
    }


def report(result: dict[str, Any]) -> None:
    print(f"{result['benchmark']}: {result['messages']:,} messages x {result['rounds']} "
          f"rounds, {result['connections']} lockstep connections, "
          f"{result['corpus_files']} corpus files, sink: {result['sink']}; medians over rounds")
    print(f"  {'target':22s} {'delivered/s':>11s} {'e2e p50 ms':>11s} {'e2e p99 ms':>11s} "
          f"{'ACK msgs/s':>11s} {'ACK p50 ms':>11s} {'ACK p99 ms':>11s} {'CPU ms/msg':>11s}")
    for target, figures in result["median"].items():
        print(f"  {target:22s} {num(figures['delivered_msgs_per_s']):>11s} "
              f"{num(figures['e2e_p50_ms'], 1):>11s} {num(figures['e2e_p99_ms'], 1):>11s} "
              f"{num(figures['ack_msgs_per_s']):>11s} {num(figures['ack_p50_ms'], 2):>11s} "
              f"{num(figures['ack_p99_ms'], 2):>11s} {num(figures['cpu_ms_per_msg'], 3):>11s}")
    print("  delivered/s: messages over the time from the first send to the last POST counted "
          "at the sink")
    print("  e2e: receive to delivered, exact, from the store (deliveries.delivered_at minus "
          "journal.received_at), under the full lockstep load; n/a for Node-RED, which keeps "
          "no timestamps the sink could see")
    for target, figures in result["median"].items():
        if figures["histogram_p50_ms"] is not None:
            print(f"  {target}: from the /metrics histogram (interpolated within buckets, as "
                  f"histogram_quantile): p50 {num(figures['histogram_p50_ms'], 1)} ms, "
                  f"p99 {num(figures['histogram_p99_ms'], 1)} ms")
    print(f"  CPU: Switchboard's serve and pipeline worker processes "
          f"({result['pipeline_workers']} pipeline workers, {result['delivery_workers']} "
          "chains sent at once by the delivery process); Node-RED's process")
    for name, ratio in result["median_ratios"].items():
        inverse = "" if not ratio else f" (the other is {1 / ratio:,.2f}x)"
        print(f"  {name}: {num(ratio, 3)}{inverse}")
    goal = result["target"]
    verdict = "n/a" if goal["median"] is None else "met" if goal["met"] else "MISSED"
    print(f"  target: >= {goal['at_least']:,.0f} msgs/s delivered on {goal['target']}: "
          f"{verdict} (median {num(goal['median'])})")
    for failure in result["failures"]:
        where = "" if failure["round"] is None else f" round {failure['round']}"
        print(f"  FAILED {failure['target']}{where}: {failure['error']}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sink"]:
        return sink_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", type=Path, help="the Node-RED peer harness folder")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--warmup", type=int, default=2_000,
                        help="messages sent to each Switchboard start before measuring")
    parser.add_argument("--peer-warmup", type=int, default=5_000,
                        help="messages sent to Node-RED once before measuring (as run.sh)")
    parser.add_argument("--pipeline-workers", type=int, default=2,
                        help="switchboard serve --pipeline-workers")
    parser.add_argument("--delivery-workers", type=int, default=4,
                        help="switchboard serve --delivery-workers")
    parser.add_argument("--keep", action="store_true", help="keep the logs and stores")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--messages, --rounds and --connections must be at least 1")
    if args.delivery_workers < 1:
        parser.error("--delivery-workers must be at least 1")
    terminate_on_sigterm()
    processes = Processes(LABEL)
    try:
        with workspace(args.keep, LABEL) as work:
            try:
                result = benchmark(args, processes, work)
            finally:
                processes.stop_all()
    except KeyboardInterrupt:
        print(f"{LABEL}: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
