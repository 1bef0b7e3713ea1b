"""Benchmark: MLLP ingest, Switchboard (SQLite and PostgreSQL) against its peers, side
by side in one run.

Every target meets the same client (:mod:`bench.mllp_load`: the same messages, the
same number of lockstep connections) and the targets take turns within every round,
the order reversed each round, so the machine's noise hits them alike. The report gives
the median of each figure over the rounds and the median of the per-round ratios.

- ``switchboard-sqlite`` and ``switchboard-postgres``: ``switchboard serve`` in a
  subprocess, a fresh store each round (SQLite in WAL mode with synchronous=FULL; a
  private PostgreSQL cluster running with fsync on, a new database each round). The
  MLLP listener is the catalog's ``ehr-adt-feed`` (127.0.0.1:2575). After a warm-up
  whose routing is let finish, the run gives the ACKed msgs/s and ACK p50/p99, and the
  routed msgs/s: messages routed by the pipeline (journal status ``routed``, watched on
  /metrics) over the time from the first send until the last of them was routed. Each
  Switchboard round ends by stopping the server (SIGTERM), since both stores use the
  catalog's port. The server runs with ``--delivery-workers 0``: the shipped catalog's
  destinations are hosts that do not exist here, and delivery threads would spend CPU
  failing to reach them during the measurement (delivery is :mod:`bench.delivery`'s).
- A latency point, on SQLite after its throughput run: paced load of 1,000 msgs/s for
  10 s, ACK latency p50/p99 measured from when each message was due (target: p99 <=
  50 ms).
- With ``--peers DIR`` (the Node-RED peer harness): its ``setup.sh`` once, then its
  HTTP sink, the Node-RED HL7 router and the bare asyncio ACK server started as its
  ``run.sh`` starts them. Node-RED's end-to-end rate counts POSTs at the sink; the bare
  ACK server (no routing, no store) is the transport ceiling for this client.

Node-RED ACKs once routing is decided and keeps nothing; Switchboard commits each
message to its journal before it ACKs, and its "routed" means the route decision and
the delivery intents committed to the store (the outbox), not delivered to a
destination (end to end, to a local HTTP sink, is :mod:`bench.delivery`).

    python -m bench.ingest [--messages 20000] [--connections 4] [--rounds 3]
                           [--peers DIR] [--json FILE] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.mllp_load import DEFAULT_CORPUS, Template, load_corpus, run_load
from bench.serving import (
    ROOT,
    BenchError,
    DurableCluster,
    Followed,
    Processes,
    http_get,
    install_node_red,
    listening,
    load_and_follow,
    median,
    median_ratio,
    sink_count,
    start_node_red,
    start_sink,
    start_switchboard,
    terminate_on_sigterm,
    wait_listening,
    wait_port_free,
    wait_ready,
    workspace,
)
from bench.serving import num as _num
from tests.ports import free_port

MLLP_SOURCE = ROOT / "catalog" / "connections" / "ehr-adt-feed.yaml"
SQLITE, POSTGRES, NODE_RED, BARE = (
    "switchboard-sqlite", "switchboard-postgres", "node-red", "bare-ack")
FIGURES = ("ack_msgs_per_s", "routed_msgs_per_s", "p50_ms", "p99_ms", "cpu_ms_per_msg")
SWITCHBOARD_POLL = 0.1  # /metrics is served by the process under test: poll gently
SINK_POLL = 0.05


def switchboard_counts(metrics_url: str) -> tuple[int, float]:
    """(messages routed, queue depth) from Switchboard's /metrics."""
    status, body = http_get(metrics_url)
    if status != 200:
        raise BenchError(f"{metrics_url} answered {status}")
    routed, depth = 0.0, 0.0
    for line in body.decode().splitlines():
        if line.startswith("switchboard_routed_total"):
            routed += float(line.rsplit(" ", 1)[1])
        elif line.startswith("switchboard_queue_depth"):
            depth = float(line.rsplit(" ", 1)[1])
    return int(routed), depth


def sink_counts(count_url: str) -> tuple[int, float]:
    """(POSTs received, 0) from the peer sink's /count."""
    return int(sink_count(count_url)["posts"]), 0.0


# ---- one round's figures -------------------------------------------------------


def summarise(result: dict[str, Any], followed: Followed | None, cpu_s: float | None,
              messages: int) -> dict[str, Any]:
    """One target's figures for one round."""
    first_send = result.pop("first_send_perf_counter")
    summary: dict[str, Any] = {
        "ack_msgs_per_s": result["msgs_per_s"],
        "routed_msgs_per_s": None,
        "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
        "cpu_ms_per_msg": None if cpu_s is None or not messages
        else round(cpu_s * 1e3 / messages, 3),
        "load": result,
    }
    if followed is not None:
        summary["routed"] = followed.counted
        summary["max_queue_depth"] = followed.max_queue_depth
        if followed.reached_at is not None and first_send is not None:
            seconds = followed.reached_at - first_send
            summary["routed_seconds"] = round(seconds, 3)
            summary["routed_msgs_per_s"] = round(followed.counted / seconds, 1)
    return summary


def incomplete(summary: dict[str, Any], messages: int, downstream: bool) -> str | None:
    load = summary["load"]
    problems = []
    if load["aa"] != messages:
        problems.append(f"{load['aa']}/{messages} AA")
    if load["mismatched"]:
        problems.append(f"{load['mismatched']} ACKs with the wrong MSA-2")
    if load["error_count"]:
        problems.append(f"errors: {'; '.join(load['errors'][:3])}")
    if downstream and summary["routed_msgs_per_s"] is None:
        problems.append(f"only {summary.get('routed')} routed/delivered in time")
    return ", ".join(problems) or None


# ---- Switchboard ------------------------------------------------------------------


def mllp_endpoint() -> tuple[str, int]:
    endpoint = yaml.safe_load(MLLP_SOURCE.read_text())["endpoint"]
    return str(endpoint["host"]), int(endpoint["port"])


@dataclass
class Run:
    """Everything a round needs."""

    args: argparse.Namespace
    corpus: list[Template]
    work: Path
    processes: Processes
    mllp: tuple[str, int]
    cluster: DurableCluster | None = None
    peers: dict[str, Any] = field(default_factory=dict)

    @property
    def settle(self) -> float:
        """How long routing or delivery may take to catch up once the ACKs are in."""
        return max(120.0, int(self.args.messages) / 20)


def run_switchboard(run: Run, target: str, round_number: int) -> dict[str, Any]:
    args = run.args
    folder = run.work / f"{target}-{round_number}"
    folder.mkdir()
    database = f"bench_round_{round_number}"
    if target == SQLITE:
        url = f"sqlite:///{folder / 'sb.db'}"
    else:
        assert run.cluster is not None
        url = run.cluster.create(database)
    host, mllp_port = run.mllp
    wait_port_free(host, mllp_port)
    # No delivery threads: the catalog's destinations are hosts that do not exist here,
    # and failing to reach them would take CPU from the ingest being measured.
    web = free_port()
    process = start_switchboard(run.processes, target, ROOT, url, web, folder,
                                "--delivery-workers", "0")
    base = f"http://127.0.0.1:{web}"
    try:
        startup = wait_ready(process, base + "/readyz")
        if not listening(mllp_port):
            raise BenchError(f"{target}: nothing listens on the catalog's port {mllp_port}")

        def counts() -> tuple[int, float]:
            return switchboard_counts(base + "/metrics")

        if args.warmup:
            _, warm = asyncio.run(load_and_follow(mllp_port, args.warmup, args.connections,
                                           run.corpus, counts, SWITCHBOARD_POLL, run.settle))
            if warm.reached_at is None:
                raise BenchError(f"{target}: the warm-up was not routed in time")
        cpu_before = process.cpu_seconds()
        result, followed = asyncio.run(load_and_follow(
            mllp_port, args.messages, args.connections, run.corpus, counts,
            SWITCHBOARD_POLL, run.settle))
        cpu_after = process.cpu_seconds()
        cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        summary = summarise(result, followed, cpu, args.messages)
        summary["startup_s"] = round(startup, 2)
        if target == SQLITE and args.latency_seconds > 0:
            summary["latency_point"] = latency_point(run, mllp_port)
        return summary
    finally:
        run.processes.stop(process)
        if target == POSTGRES and run.cluster is not None:
            with contextlib.suppress(Exception):
                run.cluster.drop(database)


def latency_point(run: Run, port: int) -> dict[str, Any]:
    args = run.args
    messages = round(args.latency_rate * args.latency_seconds)
    limit = args.latency_seconds + args.latency_grace
    result = asyncio.run(run_load("127.0.0.1", port, messages, args.connections, run.corpus,
                                  rate=args.latency_rate, time_limit=limit))
    result.pop("first_send_perf_counter")
    unanswered = result["unanswered_when_time_ran_out"]
    return {
        "offered_msgs_per_s": args.latency_rate, "seconds": args.latency_seconds,
        "time_limit_s": limit, "achieved_msgs_per_s": result["msgs_per_s"],
        "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
        # the receiver could not keep up: unanswered messages count with the time they
        # had waited when the run gave up, so p50/p99 are lower bounds
        "unanswered": unanswered, "lower_bound": unanswered > 0,
        "complete": result["aa"] == messages and not result["mismatched"],
        "load": result,
    }


# ---- peers ------------------------------------------------------------------------


def start_peers(run: Run, folder: Path) -> None:
    """setup.sh, then the sink, Node-RED and the bare ACK server as run.sh starts them,
    on free ports; each warmed up as run.sh does."""
    install = install_node_red(folder, "ingest")
    work = run.work / "peers"
    work.mkdir()
    _sink, sink_port = start_sink(run.processes, [sys.executable, str(folder / "sink.py")],
                                  work / "sink.log")
    sink_url = f"http://127.0.0.1:{sink_port}"
    nodered, red_port = start_node_red(run.processes, install, work, sink_url, NODE_RED)
    bare_port = free_port()
    bare = run.processes.start(BARE, [sys.executable, str(folder / "bare_ack.py"), "--port",
                                      str(bare_port)], work / "bare.log")
    wait_listening(bare, bare_port)
    run.peers = {
        "folder": str(folder), "node_red": install.node_red_version,
        "node": install.node_version,
        NODE_RED: (nodered, red_port), BARE: (bare, bare_port),
        "count_url": f"{sink_url}/count",
    }
    warmup = run.args.peer_warmup
    if warmup:
        def delivered() -> tuple[int, float]:
            return sink_counts(run.peers["count_url"])
        _, warm = asyncio.run(load_and_follow(red_port, warmup, run.args.connections, run.corpus,
                                       delivered, SINK_POLL, run.settle))
        if warm.reached_at is None:
            raise BenchError("node-red: the warm-up was not delivered to the sink in time")
        asyncio.run(run_load("127.0.0.1", bare_port, warmup, run.args.connections, run.corpus))


def run_peer(run: Run, target: str) -> dict[str, Any]:
    process, port = run.peers[target]
    if not process.alive:
        raise BenchError(f"{target} is no longer running:\n{process.tail()}")
    args = run.args
    cpu_before = process.cpu_seconds()
    if target == NODE_RED:
        def delivered() -> tuple[int, float]:
            return sink_counts(run.peers["count_url"])
        result, followed = asyncio.run(load_and_follow(port, args.messages, args.connections,
                                                run.corpus, delivered, SINK_POLL, run.settle))
    else:
        result = asyncio.run(run_load("127.0.0.1", port, args.messages, args.connections,
                               run.corpus))
        followed = None
    cpu_after = process.cpu_seconds()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return summarise(result, followed, cpu, args.messages)


# ---- the run ----------------------------------------------------------------------


def benchmark(args: argparse.Namespace, processes: Processes, work: Path) -> dict[str, Any]:
    corpus = load_corpus(args.corpus)
    run = Run(args, corpus, work, processes, mllp_endpoint())
    failures: list[dict[str, Any]] = []
    targets = [SQLITE] + ([] if args.skip_postgres else [POSTGRES])
    postgres_settings: dict[str, str] | None = None
    try:
        if not args.skip_postgres:
            try:
                run.cluster = DurableCluster()
                run.cluster.start()
                postgres_settings = run.cluster.settings()
            except Exception as error:  # no PostgreSQL here: measure the rest
                failures.append({"target": POSTGRES, "round": None, "error": str(error)})
                targets.remove(POSTGRES)
        if args.peers:
            try:
                start_peers(run, args.peers.resolve())
                targets += [NODE_RED, BARE]
            except Exception as error:
                failures.append({"target": "peers", "round": None, "error": str(error)})
        rounds: list[dict[str, Any]] = []
        for number in range(1, args.rounds + 1):
            order = targets if number % 2 else targets[::-1]
            record: dict[str, Any] = {"round": number, "order": list(order), "results": {}}
            rounds.append(record)
            for target in order:
                print(f"ingest: round {number}/{args.rounds}: {target}", file=sys.stderr,
                      flush=True)
                try:
                    if target in (SQLITE, POSTGRES):
                        summary = run_switchboard(run, target, number)
                    else:
                        summary = run_peer(run, target)
                except Exception as error:  # one target failing must not end the run
                    failures.append({"target": target, "round": number, "error": str(error)})
                    print(f"ingest: {target} failed: {error}", file=sys.stderr)
                    continue
                record["results"][target] = summary
                problem = incomplete(summary, args.messages, target != BARE)
                if problem:
                    failures.append({"target": target, "round": number,
                                     "error": f"incomplete: {problem}"})
                print(f"ingest:   {_line(target, summary)}", file=sys.stderr, flush=True)
        return _result(args, run, targets, rounds, failures, postgres_settings)
    finally:
        if run.cluster is not None:
            with contextlib.suppress(Exception):
                run.cluster.destroy()


def _line(target: str, summary: dict[str, Any]) -> str:
    text = (f"{target}: ACK {_num(summary['ack_msgs_per_s'])} msgs/s, routed "
            f"{_num(summary['routed_msgs_per_s'])} msgs/s, p50 {_num(summary['p50_ms'], 2)} "
            f"ms, p99 {_num(summary['p99_ms'], 2)} ms")
    point = summary.get("latency_point")
    if point:
        bound = ">= " if point["lower_bound"] else ""
        text += (f"; at {point['offered_msgs_per_s']:,.0f} msgs/s offered: p50 {bound}"
                 f"{_num(point['p50_ms'], 2)} ms, p99 {bound}{_num(point['p99_ms'], 2)} ms"
                 f" ({point['unanswered']} unanswered)")
    return text


def _result(args: argparse.Namespace, run: Run, targets: list[str],
            rounds: list[dict[str, Any]], failures: list[dict[str, Any]],
            postgres_settings: dict[str, str] | None) -> dict[str, Any]:
    samples = {
        target: {figure: [r["results"].get(target, {}).get(figure) for r in rounds]
                 for figure in FIGURES}
        for target in targets
    }
    medians = {target: {figure: median(values) for figure, values in figures.items()}
               for target, figures in samples.items()}
    ratios: dict[str, float | None] = {}
    if SQLITE in samples:
        sqlite = samples[SQLITE]
        for other, figure, name in (
            (NODE_RED, "ack_msgs_per_s", "ack_sqlite_over_node_red"),
            (NODE_RED, "routed_msgs_per_s", "routed_sqlite_over_node_red_end_to_end"),
            (BARE, "ack_msgs_per_s", "ack_sqlite_over_bare_ack"),
            (POSTGRES, "ack_msgs_per_s", "ack_sqlite_over_postgres"),
            (POSTGRES, "routed_msgs_per_s", "routed_sqlite_over_postgres"),
        ):
            if other in samples:
                ratios[name] = median_ratio(sqlite[figure], samples[other][figure])
    points = [r["results"].get(SQLITE, {}).get("latency_point") for r in rounds]
    points = [point for point in points if point]
    latency = None
    if points:
        latency = {
            "target": SQLITE, "offered_msgs_per_s": args.latency_rate,
            "seconds": args.latency_seconds, "p99_target_ms": 50.0,
            "median_p50_ms": median([p["p50_ms"] for p in points]),
            "median_p99_ms": median([p["p99_ms"] for p in points]),
            "median_achieved_msgs_per_s": median([p["achieved_msgs_per_s"] for p in points]),
            "samples_p99_ms": [p["p99_ms"] for p in points],
            "samples_unanswered": [p["unanswered"] for p in points],
            "lower_bound": any(p["lower_bound"] for p in points),
        }
        p99 = latency["median_p99_ms"]
        latency["p99_target_met"] = p99 is not None and p99 <= 50.0
    peers = {key: run.peers[key] for key in ("folder", "node_red", "node") if key in run.peers}
    return {
        "benchmark": "MLLP ingest: ACKed and routed msgs/s, ACK latency",
        "messages": args.messages, "connections": args.connections, "rounds": args.rounds,
        "warmup_messages": args.warmup, "peer_warmup_messages": args.peer_warmup,
        "corpus": str(args.corpus), "corpus_files": len(run.corpus),
        "mllp_listener": f"{run.mllp[0]}:{run.mllp[1]}",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "postgres": postgres_settings, "peers": peers or None,
        "median": medians, "median_ratios": ratios, "latency_point": latency,
        "samples": samples, "runs": rounds, "failures": failures,
    }


def report(result: dict[str, Any]) -> None:
    print(f"{result['benchmark']}: {result['messages']:,} messages x {result['rounds']} "
          f"rounds, {result['connections']} lockstep connections, "
          f"{result['corpus_files']} corpus files; medians over rounds")
    header = (f"  {'target':22s} {'ACK msgs/s':>11s} {'routed msgs/s':>14s} "
              f"{'ACK p50 ms':>11s} {'ACK p99 ms':>11s} {'CPU ms/msg':>11s}")
    print(header)
    for target, figures in result["median"].items():
        print(f"  {target:22s} {_num(figures['ack_msgs_per_s']):>11s} "
              f"{_num(figures['routed_msgs_per_s']):>14s} {_num(figures['p50_ms'], 2):>11s} "
              f"{_num(figures['p99_ms'], 2):>11s} {_num(figures['cpu_ms_per_msg'], 3):>11s}")
    print("  routed: Switchboard's journal status 'routed' (decision and outbox committed); "
          "Node-RED: POSTs at the sink (end to end); CPU: the target process only")
    for name, ratio in result["median_ratios"].items():
        inverse = "" if not ratio else f" (the other is {1 / ratio:,.1f}x)"
        print(f"  {name}: {_num(ratio, 3)}{inverse}")
    point = result["latency_point"]
    if point:
        verdict = "met" if point["p99_target_met"] else "MISSED"
        bound = ">= " if point["lower_bound"] else ""
        print(f"  latency point, {point['target']} at {point['offered_msgs_per_s']:,.0f} "
              f"msgs/s offered for {point['seconds']:g} s: achieved "
              f"{_num(point['median_achieved_msgs_per_s'])} msgs/s, ACK p50 {bound}"
              f"{_num(point['median_p50_ms'], 2)} ms, p99 {bound}"
              f"{_num(point['median_p99_ms'], 2)} ms (target p99 <= 50 ms: {verdict})")
        if point["lower_bound"]:
            print(f"    overloaded: {point['samples_unanswered']} messages per round were "
                  "still unanswered when the run gave up; they count with the time they had "
                  "waited, so the latencies are lower bounds")
    for failure in result["failures"]:
        where = "" if failure["round"] is None else f" round {failure['round']}"
        print(f"  FAILED {failure['target']}{where}: {failure['error']}")


def main(argv: list[str] | None = None) -> int:
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
                        help="messages sent to each peer once before measuring (as run.sh)")
    parser.add_argument("--latency-rate", type=float, default=1_000.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0,
                        help="0 skips the latency point")
    parser.add_argument("--latency-grace", type=float, default=10.0,
                        help="seconds the latency point waits for ACKs after the last is due")
    parser.add_argument("--keep", action="store_true", help="keep the logs and stores")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--messages, --rounds and --connections must be at least 1")
    terminate_on_sigterm()
    processes = Processes("ingest")
    try:
        with workspace(args.keep, "ingest") as work:
            try:
                result = benchmark(args, processes, work)
            finally:
                processes.stop_all()
    except KeyboardInterrupt:
        print("ingest: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
