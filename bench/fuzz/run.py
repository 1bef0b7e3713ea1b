"""The fuzz run: a real ``switchboard serve`` (SQLite) fed generated inputs over MLLP
and HTTP ingest by concurrent senders, watched from outside, then checked against
every invariant and reported (see :mod:`bench.fuzz` for what each figure means)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.fuzz import engine_watch
from bench.fuzz.engine_watch import Samples, by_label, read_metrics, total
from bench.fuzz.http_session import Feed, HttpSession, Ingest
from bench.fuzz.inputs import InputMaker
from bench.fuzz.mllp_session import ANSWER_LIMIT, Listener, MllpSession
from bench.fuzz.plans import MLLP, SessionPlan, produce
from bench.fuzz.seeds import load_seeds
from bench.fuzz.sink import Sink
from bench.fuzz.tally import Tally
from bench.mllp_load import read_ack
from bench.serving import (
    ROOT,
    Processes,
    start_switchboard,
    terminate_on_sigterm,
    wait_ready,
    workspace,
)
from tests.delivery_config import (
    FHIR_FEED,
    FHIR_FEED_TOKEN_ENV,
    HTTP_FEED,
    HTTP_FEED_TOKEN_ENV,
    delivery_config,
    update,
)
from tests.ports import free_port

LABEL = "fuzz"
MIB = 1024 * 1024
MEMORY_GROWTH_LIMIT = 20 * MIB
VALID_MUTATION_TARGET = 0.5
ROUTING_TARGET = 0.25
PROGRESS_EVERY = 15.0
# Closes the listener makes on its own (the others are the senders' doing).
LISTENER_CLOSES = ("oversize", "idle", "slow_reader", "refused", "stopped", "internal_error")


@dataclass
class Options:
    inputs: int = 1_000_000
    seed: int = 0
    senders: int = 16
    warm_up: int | None = None  # inputs before the memory baseline; default a tenth
    idle_timeout: float = 2.0
    max_frame_bytes: int = 64 * 1024
    settle_limit: float = 900.0
    time_limit: float | None = None  # seconds of sending; the run stops short of inputs
    metrics_token: str | None = None
    keep: bool = False
    quiet: bool = False
    json_path: Path | None = None
    findings: Path | None = None

    @property
    def warm_up_inputs(self) -> int:
        return self.warm_up if self.warm_up is not None else min(50_000, self.inputs // 10)


@dataclass
class Watch:
    """Memory and progress, sampled while the senders run."""

    rss_start: int = 0
    rss_warm: int | None = None
    rss_peak: int = 0
    by_process_warm: dict[int, int] = field(default_factory=dict)
    warm_at: float | None = None
    warm_inputs: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (s, inputs, rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--senders", type=int, default=16, help="sessions at once")
    parser.add_argument("--warm-up", type=int, help="inputs before the memory baseline "
                        "(default: a tenth, at most 50,000)")
    parser.add_argument("--settle-limit", type=float, default=900.0,
                        help="seconds to wait for the pipeline and deliveries to drain")
    parser.add_argument("--time-limit", type=float, help="stop sending after this many "
                        "seconds (the report says how many inputs were sent)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    parser.add_argument("--keep", action="store_true", help="keep the store and logs")
    args = parser.parse_args(argv)
    options = Options(inputs=args.inputs, seed=args.seed, senders=args.senders,
                      warm_up=args.warm_up, settle_limit=args.settle_limit,
                      time_limit=args.time_limit,
                      metrics_token=os.environ.get("SWITCHBOARD_METRICS_TOKEN"),
                      keep=args.keep, json_path=args.json,
                      findings=args.json.parent / "fuzz-findings")
    terminate_on_sigterm()  # stopped by a signal, it still stops its serve process
    result = run(options)
    print(report(result))
    return 0 if result["invariants_held"] else 1


def run(options: Options) -> dict[str, Any]:
    """One fuzz run from start to verdict; the result as written to JSON."""
    with workspace(options.keep, LABEL) as folder:
        result = asyncio.run(_fuzz(options, folder))
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def _configure(folder: Path, sink_port: int, mllp_port: int, options: Options) -> Path:
    config = delivery_config(folder / "config", f"http://127.0.0.1:{sink_port}/fuzz",
                             mllp_port=mllp_port, http_feed=True, fhir_feed=True)
    feed_file = config / "catalog" / "connections" / "ehr-adt-feed.yaml"
    feed = yaml.safe_load(feed_file.read_text())
    # A short idle timeout, so stalled senders are closed within the run, and a small
    # frame limit, so oversize frames cost little to send.
    feed["endpoint"].update(idle_timeout=f"{options.idle_timeout:g}s",
                            max_frame_bytes=options.max_frame_bytes,
                            allowed_peers=["127.0.0.1"])
    feed_file.write_text(yaml.safe_dump(feed, sort_keys=False))
    return config


async def _fuzz(options: Options, folder: Path) -> dict[str, Any]:
    say = (lambda *_: None) if options.quiet else (
        lambda text: print(f"fuzz: {text}", file=sys.stderr, flush=True))
    web, mllp, sink_port = free_port(), free_port(), free_port()
    tokens = {HTTP_FEED_TOKEN_ENV: secrets.token_urlsafe(24),
              FHIR_FEED_TOKEN_ENV: secrets.token_urlsafe(24)}
    os.environ.update(tokens)
    config = _configure(folder, sink_port, mllp, options)
    sink = Sink()
    await sink.start(sink_port)
    processes = Processes(LABEL)
    base = f"http://127.0.0.1:{web}"
    serve = start_switchboard(processes, "switchboard serve", config,
                              f"sqlite:///{folder / 'fuzz.db'}", web, folder)
    try:
        await asyncio.to_thread(wait_ready, serve, f"{base}/readyz")
        say(f"serve ready (web {web}, MLLP {mllp}); store and log in {folder}")
        before = await _metrics(base, options)
        tally, watch, seconds = await _send(options, serve.popen.pid, mllp, web, tokens, say)
        alive_after_load = serve.alive
        settled, settle_seconds, load = await _settle(base, options, tally, before, say)
        by_process_after = engine_watch.resident_by_process(serve.popen.pid)
        rss_after = sum(by_process_after.values())
        e2e = await _end_to_end(mllp, sink, options.seed)
        after = await _closes_counted(base, options, before, tally.connections + 1)
        alive = serve.alive
    finally:
        processes.stop_all()
        await sink.stop()
    problems = engine_watch.log_problems(serve.log)
    findings = (tally.write_findings(options.findings)
                if options.findings is not None and tally.findings else [])
    result = _result(options, tally, watch, seconds, before, load, after, rss_after, e2e,
                     settled, settle_seconds, alive and alive_after_load, problems, findings,
                     sink.posts)
    result["memory"]["by_process_mib"] = {
        str(pid): [round(watch.by_process_warm.get(pid, 0) / MIB, 1), round(rss / MIB, 1)]
        for pid, rss in by_process_after.items()}  # [after warm-up, after the run]
    return result


async def _metrics(base: str, options: Options) -> Samples:
    return await asyncio.to_thread(read_metrics, base, options.metrics_token)


async def _closes_counted(base: str, options: Options, before: Samples,
                          connections: int) -> Samples:
    """The metrics once ``connections`` closes are counted, or after ANSWER_LIMIT."""
    deadline = time.monotonic() + ANSWER_LIMIT
    while True:
        samples = await _metrics(base, options)
        counted = _delta(samples, before, "switchboard_mllp_closed_total")
        if counted >= connections or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.05)


async def _send(options: Options, pid: int, mllp: int, web: int, tokens: dict[str, str],
                say: Any) -> tuple[Tally, Watch, float]:
    """Every input sent by ``options.senders`` concurrent sessions, plans drawn by
    Hypothesis in a thread of its own; memory sampled meanwhile."""
    loop = asyncio.get_running_loop()
    plans: asyncio.Queue[SessionPlan | None] = asyncio.Queue(maxsize=4 * options.senders)
    stop = threading.Event()
    tally = Tally()
    maker = InputMaker(load_seeds(), f"{options.seed}x{secrets.token_hex(3)}")
    listener = Listener(mllp, options.idle_timeout, options.max_frame_bytes)
    ingest = Ingest(web, Feed(HTTP_FEED, tokens[HTTP_FEED_TOKEN_ENV], "application/hl7-v2"),
                    Feed(FHIR_FEED, tokens[FHIR_FEED_TOKEN_ENV], "application/fhir+json"))

    def put(plan: SessionPlan) -> None:
        asyncio.run_coroutine_threadsafe(plans.put(plan), loop).result()

    def draw() -> None:
        try:
            produce(options.inputs, options.seed, put, stop)
        finally:
            for _ in range(options.senders):
                asyncio.run_coroutine_threadsafe(plans.put(None), loop).result()

    async def sender() -> None:
        while (plan := await plans.get()) is not None:
            if stop.is_set():
                continue  # the time limit passed: what is queued is not sent
            session = (MllpSession(plan, maker, listener, tally) if plan.transport == MLLP
                       else HttpSession(plan, maker, ingest, tally))
            try:
                await session.run()
            except Exception as error:  # the harness's own trouble, or serve gone
                tally.fail("harness_error", repr(error), plan.transport, b"", plan)
                if not _alive(pid):
                    stop.set()
                    return

    watch = Watch(rss_start=engine_watch.resident_bytes(pid))
    start = time.monotonic()
    drawing = threading.Thread(target=draw, name="fuzz-plans", daemon=True)
    drawing.start()
    watching = asyncio.create_task(_watch(watch, tally, pid, options, start, say))
    if options.time_limit is not None:
        loop.call_later(options.time_limit, stop.set)
    try:
        await asyncio.gather(*(sender() for _ in range(options.senders)))
    finally:
        stop.set()
        seconds = time.monotonic() - start
        watching.cancel()
        # Sentinels may still be waiting for room in the queue: make it.
        while not plans.empty():
            plans.get_nowait()
        await asyncio.to_thread(drawing.join, 30)
    if watch.rss_warm is None:
        watch.rss_warm, watch.warm_at = engine_watch.resident_bytes(pid), seconds
        watch.by_process_warm = engine_watch.resident_by_process(pid)
        watch.warm_inputs = tally.inputs
    return tally, watch, seconds


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def _watch(watch: Watch, tally: Tally, pid: int, options: Options, start: float,
                 say: Any) -> None:
    last_print = start
    while True:
        await asyncio.sleep(0.5)
        now = time.monotonic()
        rss = engine_watch.resident_bytes(pid)
        watch.rss_peak = max(watch.rss_peak, rss)
        if watch.rss_warm is None and tally.inputs >= options.warm_up_inputs:
            watch.rss_warm, watch.warm_at, watch.warm_inputs = rss, now - start, tally.inputs
            watch.by_process_warm = engine_watch.resident_by_process(pid)
            say(f"warm-up done after {tally.inputs:,} inputs: RSS {rss / MIB:.1f} MiB")
        if now - last_print >= PROGRESS_EVERY:
            last_print = now
            watch.samples.append((round(now - start, 1), tally.inputs, rss))
            say(f"{tally.inputs:,} inputs in {now - start:.0f} s "
                f"({tally.inputs / (now - start):.0f}/s), RSS {rss / MIB:.1f} MiB, "
                f"failures {dict(tally.failures)}")


async def _settle(base: str, options: Options, tally: Tally, before: Samples,
                  say: Any) -> tuple[bool, float, Samples]:
    """Wait for every connection's close to be counted, the pipeline to take every
    journaled message and every delivery to be made (False at the limit); the metrics
    then, which count the fuzz inputs alone."""
    start = time.monotonic()
    while True:
        samples = await _metrics(base, options)
        closed = (total(samples, "switchboard_mllp_closed_total")
                  - total(before, "switchboard_mllp_closed_total"))
        waiting = total(samples, "switchboard_queue_depth")
        unrouted = total(samples, "switchboard_oldest_unrouted_age_seconds")
        undelivered = total(samples, "switchboard_oldest_pending_delivery_age_seconds")
        if closed >= tally.connections and waiting == 0 and unrouted == 0 and undelivered == 0:
            return True, time.monotonic() - start, samples
        if time.monotonic() - start > options.settle_limit:
            say(f"not settled after {options.settle_limit:g} s: closes {closed:.0f} of "
                f"{tally.connections}, {waiting:.0f} waiting for the pipeline, oldest "
                f"undelivered {undelivered:.0f} s")
            return False, time.monotonic() - start, samples
        await asyncio.sleep(1.0)


async def _end_to_end(mllp: int, sink: Sink, seed: int) -> dict[str, Any]:
    """An ordinary message after the run: ACKed and at the HTTP destination within
    ANSWER_LIMIT seconds of being sent."""
    control_id = f"FUZZ-E2E-{seed}-{secrets.token_hex(4)}"
    sink.watch(control_id.encode())
    frame = b"\x0b" + update(control_id, f"MRN-{control_id}") + b"\x1c\r"
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", mllp)
    try:
        writer.write(frame)
        async with asyncio.timeout(ANSWER_LIMIT):
            read = read_ack(await reader.readuntil(b"\x1c\r"))
        acked = time.monotonic() - start
        while control_id.encode() not in sink.markers and time.monotonic() - start < ANSWER_LIMIT:
            await asyncio.sleep(0.01)
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
        return {"held": False, "detail": f"no ACK: {error!r}"}
    finally:
        writer.close()
    arrived = sink.markers.get(control_id.encode())
    seconds = None if arrived is None else arrived - start
    code = None if read is None else read[0].decode()
    return {"held": code == "AA" and seconds is not None and seconds <= ANSWER_LIMIT,
            "ack": code, "ack_seconds": round(acked, 3),
            "delivered_seconds": None if seconds is None else round(seconds, 3)}


def _delta(after: Samples, before: Samples, name: str, **labels: str) -> int:
    return int(total(after, name, **labels) - total(before, name, **labels))


def _result(options: Options, tally: Tally, watch: Watch, seconds: float, before: Samples,
            load: Samples, after: Samples, rss_after: int, e2e: dict[str, Any], settled: bool,
            settle_seconds: float, alive: bool, problems: dict[str, int],
            findings: list[str], sink_posts: int) -> dict[str, Any]:
    closes = {reason: count - by_label(before, "switchboard_mllp_closed_total", "reason")
              .get(reason, 0)
              for reason, count in by_label(after, "switchboard_mllp_closed_total",
                                            "reason").items()}
    closes = {reason: count for reason, count in closes.items() if count}
    # The engine's own counters once the load settled, before the end-to-end message:
    # what the fuzz inputs did, and nothing else.
    received = _delta(load, before, "switchboard_received_total")
    routed = _delta(load, before, "switchboard_routed_total")
    failed = _delta(load, before, "switchboard_failed_total")
    reached_parser = received - closes.get("oversize", 0)
    inputs = max(tally.inputs, 1)
    # The end-to-end message's connection is among the closes counted.
    counted_connections = tally.connections + 1
    closed_by_listener = sum(closes.get(reason, 0) for reason in LISTENER_CLOSES)
    growth = rss_after - (watch.rss_warm or rss_after)
    invariants = {
        "no_crash": {
            "held": alive and not problems and not tally.failures.get("server_error")
            and not tally.failures.get("harness_error"),
            "serve_alive": alive, "log_problems": problems,
            "http_5xx": tally.failures.get("server_error", 0),
            "harness_errors": tally.failures.get("harness_error", 0)},
        "no_hang": {
            "held": not tally.failures.get("hang") and not tally.failures.get("no_response")
            and sum(closes.values()) == counted_connections
            and tally.closed_by_listener <= closed_by_listener,
            "hangs": tally.failures.get("hang", 0),
            "http_closed_without_response": tally.failures.get("no_response", 0),
            "connections_opened": counted_connections,
            "closes_counted": sum(closes.values()),
            "closed_by_listener_seen": tally.closed_by_listener,
            "closed_by_listener_counted": closed_by_listener,
            "answer_limit_s": ANSWER_LIMIT,
            "slowest_answer_s": round(tally.slowest_answer, 3)},
        "no_internal_error_close": {"held": not closes.get("internal_error"),
                                    "internal_error_closes": closes.get("internal_error", 0)},
        "memory": {"held": growth < MEMORY_GROWTH_LIMIT, "growth_mib": round(growth / MIB, 2),
                   "limit_mib": MEMORY_GROWTH_LIMIT / MIB},
        "end_to_end": {**e2e, "settled_first": settled,
                       "held": bool(e2e.get("held")) and settled},
        "valid_mutations": {"held": tally.valid_mutations / inputs >= VALID_MUTATION_TARGET,
                            "share": round(tally.valid_mutations / inputs, 4),
                            "target": VALID_MUTATION_TARGET},
        "reach_routing": {"held": routed / inputs >= ROUTING_TARGET,
                          "share": round(routed / inputs, 4), "target": ROUTING_TARGET},
    }
    return {
        "command": "python -m bench.fuzz " + " ".join(sys.argv[1:]),
        "options": {"inputs": options.inputs, "seed": options.seed,
                    "senders": options.senders, "warm_up_inputs": options.warm_up_inputs,
                    "time_limit_s": options.time_limit,
                    "idle_timeout_s": options.idle_timeout,
                    "max_frame_bytes": options.max_frame_bytes},
        "inputs": tally.inputs,
        "stopped_by_time_limit": tally.inputs < options.inputs,
        "seconds": round(seconds, 1),
        "inputs_per_s": round(tally.inputs / seconds, 1) if seconds else None,
        "settle_seconds": round(settle_seconds, 1),
        "outcomes": dict(sorted(tally.outcomes.items())),
        "closes_by_reason": dict(sorted(closes.items())),
        "closes_meant_by_senders": dict(sorted(tally.expected_closes.items())),
        "kinds": dict(sorted(tally.kinds.items())),
        "sessions_by_writing": dict(sorted(tally.writings.items())),
        "sessions_by_ending": dict(sorted(tally.endings.items())),
        "mllp_connections": tally.connections,
        "engine": {"received": received, "rejected": _delta(load, before,
                                                            "switchboard_rejected_total"),
                   "acknowledged": _delta(load, before, "switchboard_acknowledged_total"),
                   "duplicates": _delta(load, before, "switchboard_duplicates_total"),
                   "routed": routed, "failed": failed,
                   "exceptions": _delta(load, before, "switchboard_exceptions_total"),
                   "delivered": _delta(load, before, "switchboard_delivered_total"),
                   "sink_posts": sink_posts},
        "depth": {"reached_parser": reached_parser,
                  "reached_parser_share": round(reached_parser / inputs, 4),
                  "reached_routing": routed,
                  "reached_routing_share": round(routed / inputs, 4),
                  "valid_mutations": tally.valid_mutations,
                  "valid_mutation_share": round(tally.valid_mutations / inputs, 4)},
        "memory": {"rss_start_mib": round(watch.rss_start / MIB, 1),
                   "rss_after_warm_up_mib": round((watch.rss_warm or 0) / MIB, 1),
                   "warm_up_inputs": watch.warm_inputs,
                   "rss_after_run_mib": round(rss_after / MIB, 1),
                   "rss_peak_mib": round(watch.rss_peak / MIB, 1),
                   "samples": watch.samples},
        "failures": dict(tally.failures),
        "findings": findings,
        "invariants": invariants,
        "invariants_held": all(check["held"] for check in invariants.values()),
    }


def report(result: dict[str, Any]) -> str:
    """The result in a few lines for a person."""
    lines = [f"fuzz: {result['inputs']:,} inputs in {result['seconds']:,} s "
             f"({result['inputs_per_s']} inputs/s); settled in {result['settle_seconds']} s",
             "outcomes:"]
    lines += [f"  {name}: {count:,}" for name, count in result["outcomes"].items()]
    lines.append("connections closed, as Switchboard counted them: "
                 + ", ".join(f"{k} {v:,}" for k, v in result["closes_by_reason"].items()))
    depth = result["depth"]
    lines.append(f"reached the parser: {depth['reached_parser_share']:.1%}; reached "
                 f"routing: {depth['reached_routing_share']:.1%}; mutations of valid "
                 f"messages: {depth['valid_mutation_share']:.1%}")
    memory = result["memory"]
    lines.append(f"RSS (serve and children): start {memory['rss_start_mib']} MiB, after "
                 f"warm-up {memory['rss_after_warm_up_mib']} MiB, after the run "
                 f"{memory['rss_after_run_mib']} MiB, peak {memory['rss_peak_mib']} MiB")
    for name, check in result["invariants"].items():
        details = ", ".join(f"{k}={v}" for k, v in check.items() if k != "held")
        lines.append(f"{'held  ' if check['held'] else 'BROKEN'} {name}: {details}")
    if result["findings"]:
        lines.append(f"findings kept: {len(result['findings'])} (bench/results/fuzz-findings)")
    return "\n".join(lines)

