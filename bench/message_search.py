"""Benchmark: the message browser's search, over HTTP, on SQLite and PostgreSQL.
Target: p95 under 100 ms for each search the issue names, on each store.

A fresh store (SQLite in WAL mode with synchronous=FULL; a private PostgreSQL cluster
with fsync on, its tables vacuumed and analysed after the load as autovacuum would) gets
the configuration of ``tests/delivery_config.py`` (every message routed to one HTTP
destination, which nothing delivers to here) and ``--messages`` generated HL7 v2
messages, put in as they arrive in production: through ``Journal.submit`` (the journal's
writer, group commit) and then the pipeline (``Pipeline.run_once``, one process per
lane, ``--lanes``), which routes them and writes the indexed paths' keys. Messages are
ADT^A01/A04/A08 (PV1-3.1 one of 300 locations) and ORU^R01 (one to five OBX, OBX-3.1
one of 2,000 codes) in equal shares, each with its own control id, from one of 20
facilities (MSH-4), for ``--messages / 4`` distinct patients. How long each part of the
load took is reported.

Then the web process is started cold, as the Procfile starts it (gunicorn, two workers,
``admin:create_app()``), and as soon as it answers, ``--queries`` searches of each kind
are sent one at a time, the kinds shuffled together, each with a value drawn at random
and never repeated: ``GET /api/messages?patient=..&patient_authority=..``,
``?control_id=..`` and ``?path=OBX-3.1&value=..``; and, beyond the issue's three, the
broad ``?path=MSH-4&value=..`` (about 50,000 matches each: its total stops counting).
Each is timed from the request to the last byte of its answer, and its total checked
against the generator's count. The figures are p50 and p95 per kind. The operating
system's page cache is not dropped: the database files are as warm as the load left
them.

    python -m bench.message_search [--messages 1000000] [--queries 200] [--lanes 2]
                                   [--json FILE] [--skip-postgres] [--keep]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.mllp_load import percentile
from bench.serving import (
    ROOT,
    BenchError,
    DurableCluster,
    Processes,
    terminate_on_sigterm,
    wait_ready,
    workspace,
)
from tests.ports import free_port

LABEL = "message_search"
TARGET_P95_MS = 100.0
AUTHORITY = "RIVERSIDE"
SOURCE = "ehr-adt-feed"
LOCATIONS, CODES, FACILITIES = 300, 2_000, 20
KINDS = ("patient", "control_id", "path OBX-3.1", "path MSH-4 (broad)")
TARGETED = KINDS[:3]
SUBMIT_WINDOW = 4_000  # messages queued for the journal's writer at a time
ROUTE_PASS = 5_000
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only


# ---- the messages -----------------------------------------------------------------


@dataclass
class Generated:
    """What the generator made, to draw queries from and check their answers."""

    messages: int
    patients: int
    by_patient: Counter[int] = field(default_factory=Counter)
    by_code: Counter[int] = field(default_factory=Counter)
    by_facility: Counter[int] = field(default_factory=Counter)


def control_id(number: int) -> str:
    return f"SB{number:09d}"


def mrn(patient: int) -> str:
    return f"MRN{patient:08d}"


def code(number: int) -> str:
    return f"{10_000 + number}-{number % 10}"


def facility(number: int) -> str:
    return f"FAC{number:02d}"


def message(number: int, rng: random.Random, patients: int) -> tuple[bytes, int, list[int], int]:
    """Message ``number``: (its bytes, its patient, its distinct OBX-3.1 codes, its
    facility)."""
    patient, place = rng.randrange(patients), rng.randrange(FACILITIES)
    header = (f"MSH|^~\\&|EHR|{facility(place)}|SB|RIVERSIDE|20261124101500||{{type}}|"
              f"{control_id(number)}|P|2.5.1\r")
    pid = f"PID|1||{mrn(patient)}^^^{AUTHORITY}^MR||DOE^JANE||19800101|F\r"
    if number % 2 == 0:
        event = ("A01", "A04", "A08")[rng.randrange(3)]
        location = rng.randrange(LOCATIONS)
        text = (header.format(type=f"ADT^{event}^ADT_A01")
                + f"EVN|{event}|20261124101500\r{pid}"
                + f"PV1|1|{'I' if event == 'A01' else 'O'}|LOC{location:03d}^1^A\r")
        return text.encode(), patient, [], place
    codes = [rng.randrange(CODES) for _ in range(rng.randint(1, 5))]
    results = "".join(f"OBX|{n}|NM|{code(c)}^Result^LN||{n}|mg/dL|||||F\r"
                      for n, c in enumerate(codes, 1))
    text = (header.format(type="ORU^R01^ORU_R01") + pid
            + f"OBR|1||ORD{number}|CBC^Blood count^L\r{results}")
    return text.encode(), patient, sorted(set(codes)), place


# ---- loading through the journal and the pipeline ----------------------------------


def prepare(url: str, work: Path) -> str:
    """Migrate, publish the configuration and add the operator whose token the
    searches carry; the token."""
    from engine.rule_versions import bootstrap
    from engine.security.users import UserStore
    from engine.store.database import open_engine
    from engine.store.migrate import upgrade
    from tests.delivery_config import delivery_config

    config = delivery_config(work / "config", "http://127.0.0.1:9/unused")
    engine = open_engine(url)
    try:
        upgrade(engine)
        bootstrap(engine, config)
        users = UserStore(engine)
        token = users.add("bench-operator", "operator", "bench")
        users.close()
        return token
    finally:
        engine.dispose()


def journal_all(url: str, messages: int, seed: int) -> Generated:
    """Every message through the journal's writer, a window at a time."""
    from engine.journal import Journal, Journaled, Received
    from engine.store.database import open_engine

    patients = max(1, messages // 4)
    generated = Generated(messages, patients)
    rng = random.Random(seed)
    engine = open_engine(url)
    journal = Journal(engine)
    try:
        pending: list[Future[Journaled]] = []
        for number in range(messages):
            raw, patient, codes, place = message(number, rng, patients)
            generated.by_patient[patient] += 1
            generated.by_facility[place] += 1
            for found in codes:
                generated.by_code[found] += 1
            pending.append(journal.submit(Received(raw, SOURCE)))
            if len(pending) == SUBMIT_WINDOW or number == messages - 1:
                for future in pending:
                    if future.result().kind != "received":
                        raise BenchError(f"a message was journaled as {future.result().kind}")
                pending = []
    finally:
        journal.close()
        engine.dispose()
    return generated


def route_lane(url: str, lane: int, lanes: int) -> None:
    """One pipeline lane, until nothing waits in it."""
    from engine.pipeline import Pipeline
    from engine.store.database import open_engine

    engine = open_engine(url)
    try:
        pipeline = Pipeline(engine, report=lambda *_: None, lane=(lane, lanes), batch=200)
        while pipeline.run_once(ROUTE_PASS):
            pass
    finally:
        engine.dispose()


def route_all(url: str, lanes: int) -> None:
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=route_lane, args=(url, lane, lanes)) for lane in range(lanes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise BenchError(f"a pipeline lane exited with {worker.exitcode}")


def check_routed(url: str, messages: int) -> dict[str, int]:
    """Every message routed, and how many lookup rows the store holds."""
    from sqlalchemy import func, select

    from engine.store.database import open_engine
    from engine.store.models import JournalEntry, MessageLookup

    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            statuses = dict(connection.execute(select(
                JournalEntry.status, func.count()).group_by(JournalEntry.status)).all())
            lookups = connection.scalar(select(func.count()).select_from(MessageLookup)) or 0
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE")
    finally:
        engine.dispose()
    if statuses.get("routed") != messages:
        raise BenchError(f"not every message was routed: {statuses}")
    return {"lookup_rows": int(lookups)}


# ---- the web process and the searches ---------------------------------------------


def start_web(processes: Processes, url: str, folder: Path) -> tuple[Any, int, float]:
    """gunicorn as the Procfile runs it, on a free port; (process, port, seconds until
    it answered)."""
    port = free_port()
    env = dict(os.environ, SWITCHBOARD_DATABASE_URL=url, SWITCHBOARD_CONFIG=str(folder),
               SWITCHBOARD_INSTANCE=str(folder / "instance"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    gunicorn = Path(sys.executable).with_name("gunicorn")
    web = processes.start("web", [str(gunicorn), "--bind", f"127.0.0.1:{port}",
                                  "--workers", "2", "admin:create_app()"],
                          folder / "web.log", cwd=ROOT, env=env)
    started = wait_ready(web, f"http://127.0.0.1:{port}/healthz")
    return web, port, started


def queries(generated: Generated, count: int, seed: int) -> list[tuple[str, dict[str, str], int]]:
    """(kind, parameters, expected total) for ``count`` distinct values of each kind,
    shuffled together."""
    rng = random.Random(seed + 1)
    chosen: list[tuple[str, dict[str, str], int]] = []
    patients = rng.sample(sorted(generated.by_patient), min(count, len(generated.by_patient)))
    chosen += [("patient", {"patient": mrn(p), "patient_authority": AUTHORITY},
                generated.by_patient[p]) for p in patients]
    numbers = rng.sample(range(generated.messages), min(count, generated.messages))
    chosen += [("control_id", {"control_id": control_id(n)}, 1) for n in numbers]
    codes = rng.sample(sorted(generated.by_code), min(count, len(generated.by_code)))
    chosen += [("path OBX-3.1", {"path": "OBX-3.1", "value": code(c)}, generated.by_code[c])
               for c in codes]
    places = rng.sample(sorted(generated.by_facility), min(count, len(generated.by_facility)))
    chosen += [("path MSH-4 (broad)", {"path": "MSH-4", "value": facility(f)},
                generated.by_facility[f]) for f in places]
    rng.shuffle(chosen)
    return chosen


def search(port: int, token: str, parameters: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Milliseconds from the request to the last byte of the answer, and the answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/messages?{urllib.parse.urlencode(parameters)}",
        headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with _HTTP.open(request, timeout=60) as response:
        body = response.read()
    elapsed = (time.perf_counter() - started) * 1e3
    return elapsed, json.loads(body)


def measure_searches(port: int, token: str, chosen: list[tuple[str, dict[str, str], int]]
                     ) -> dict[str, Any]:
    timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
    wrong: list[str] = []
    for kind, parameters, expected in chosen:
        elapsed, answer = search(port, token, parameters)
        timings[kind].append(elapsed)
        total = answer["total"]
        right = total == expected if answer["total_exact"] else total < expected
        if not right or len(answer["items"]) != min(expected, 50):
            wrong.append(f"{kind} {parameters}: {total} (exact {answer['total_exact']}), "
                         f"expected {expected}")
    figures = {kind: {"queries": len(values),
                      "p50_ms": round(percentile(sorted(values), 50) or 0.0, 2),
                      "p95_ms": round(percentile(sorted(values), 95) or 0.0, 2),
                      "max_ms": round(max(values), 2),
                      "first_ms": round(values[0], 2)}
               for kind, values in timings.items() if values}
    return {"kinds": figures, "wrong_answers": wrong}


# ---- one store --------------------------------------------------------------------


def measure(store: str, url: str, args: argparse.Namespace, work: Path,
            processes: Processes) -> dict[str, Any]:
    folder = work / store
    folder.mkdir()
    token = prepare(url, folder)
    started = time.perf_counter()
    generated = journal_all(url, args.messages, args.seed)
    journaled = time.perf_counter()
    print(f"{LABEL}: {store}: {args.messages:,} messages journaled in "
          f"{journaled - started:,.0f} s; routing", file=sys.stderr, flush=True)
    route_all(url, args.lanes)
    routed = time.perf_counter()
    stored = check_routed(url, args.messages)
    print(f"{LABEL}: {store}: routed in {routed - journaled:,.0f} s; searching",
          file=sys.stderr, flush=True)
    web, port, ready = start_web(processes, url, folder)
    try:
        result = measure_searches(port, token, queries(generated, args.queries, args.seed))
    finally:
        processes.stop(web)
    return {"messages": args.messages, "patients": generated.patients,
            "journal_s": round(journaled - started, 1), "route_s": round(routed - journaled, 1),
            "web_ready_s": round(ready, 2), **stored, **result}


def report(results: dict[str, Any], messages: int) -> None:
    print(f"Message search over {messages:,} messages, over HTTP from a cold start of the "
          f"web process (target: p95 < {TARGET_P95_MS:g} ms for "
          f"{', '.join(TARGETED)})")
    for store, result in results.items():
        if "error" in result:
            print(f"  {store}: not measured: {result['error']}")
            continue
        print(f"  {store}: loaded in {result['journal_s']:,.0f} s (journal) + "
              f"{result['route_s']:,.0f} s (pipeline); {result['lookup_rows']:,} lookup rows;"
              f" web answered {result['web_ready_s']:.1f} s after its start")
        for kind, figures in result["kinds"].items():
            verdict = ("" if kind not in TARGETED else
                       "  meets" if figures["p95_ms"] < TARGET_P95_MS else "  MISSES")
            print(f"    {kind:<20} p50 {figures['p50_ms']:7.1f} ms  p95 "
                  f"{figures['p95_ms']:7.1f} ms  (first {figures['first_ms']:.1f} ms, "
                  f"max {figures['max_ms']:.1f} ms, {figures['queries']} queries){verdict}")
        for wrong in result["wrong_answers"][:5]:
            print(f"    WRONG: {wrong}")


def failed(results: dict[str, Any]) -> bool:
    return any("error" in r or r["wrong_answers"]
               or any(r["kinds"][k]["p95_ms"] >= TARGET_P95_MS for k in TARGETED)
               for r in results.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200,
                        help="searches of each kind, each for another value")
    parser.add_argument("--lanes", type=int, default=2, help="pipeline processes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the logs and stores")
    args = parser.parse_args(argv)
    if args.messages < 4 or args.queries < 1 or args.lanes < 1:
        parser.error("--messages must be at least 4, --queries and --lanes at least 1")
    terminate_on_sigterm()
    processes = Processes(LABEL)
    results: dict[str, Any] = {}
    try:
        with workspace(args.keep, LABEL) as work:
            try:
                if not args.skip_sqlite:
                    url = f"sqlite:///{work / 'switchboard.db'}"
                    results["sqlite"] = measure("sqlite", url, args, work, processes)
                if not args.skip_postgres:
                    cluster = DurableCluster()
                    cluster.start()
                    try:
                        url = cluster.create("switchboard_bench_search")
                        results["postgres"] = measure("postgres", url, args, work, processes)
                    finally:
                        cluster.destroy()
            finally:
                processes.stop_all()
    except KeyboardInterrupt:
        print(f"{LABEL}: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    report(results, args.messages)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed(results) else 0


if __name__ == "__main__":
    sys.exit(main())
