"""Benchmark: one outbox claim with a large blocked backlog, on SQLite and PostgreSQL.

A fresh store gets ``--blocked`` pending deliveries to ``lab-system`` for ``--patients``
patients, each patient's chain waiting behind a head that is retrying an hour from now
(the lab is down), and ``--live`` deliveries to ``analytics-warehouse`` that may go at
once. Three layouts, each its own store:

- ``interleaved``: every message goes to both destinations (the issue's traffic), so
  the live deliveries sit among the blocked ones;
- ``behind``: the live deliveries are newer than the whole blocked backlog (the lab has
  been down a while, analytics kept up, new messages arrive), so a claim that walks the
  pending deliveries in order meets every blocked one first;
- ``idle``: only the blocked backlog: what each idle poll of a delivery worker costs
  while the lab is down.

The backlog is filled unparked, as if it had just appeared: claims first park it, a
share each, while the live deliveries among it go (their count, total and longest time
are reported). Then ``--live`` new live deliveries arrive (not for ``idle``), and each round
times one ``Outbox.claim(--limit)`` and counts the deliveries it took, then puts them
back to pending (untimed). The figures are the medians over ``--rounds``.
PostgreSQL is a private throwaway cluster (fsync on), its tables analysed after the fill
as autovacuum would.

    python -m bench.claim [--blocked 20000] [--patients 50] [--live 1000] [--limit 100]
                          [--rounds 7] [--json FILE] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from bench.serving import DurableCluster, workspace
from engine.journal import now_utc
from engine.outbox import Outbox
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from engine.store.models import Delivery, JournalEntry

LAB, ANALYTICS = "lab-system", "analytics-warehouse"
LAYOUTS = ("interleaved", "behind", "idle")
CHUNK = 2000


def fill(engine: Engine, layout: str, blocked: int, patients: int, live: int) -> None:
    """The layout's journal rows and deliveries; each lab chain's head is retrying."""
    if layout == "interleaved":
        plan = [(LAB, ANALYTICS)] * blocked
    else:
        plan = [(LAB,)] * blocked + ([(ANALYTICS,)] * live if layout == "behind" else [])
    add(engine, plan, patients, set())


def add(engine: Engine, plan: list[tuple[str, ...]], patients: int, heads: set[str]) -> None:
    """A journal row per entry of ``plan``, with a delivery to each destination it
    names; a patient's first lab delivery not in ``heads`` is its chain's retrying head."""
    moment = now_utc()
    with engine.begin() as connection:
        for start in range(0, len(plan), CHUNK):
            part = plan[start:start + CHUNK]
            ids = connection.execute(insert(JournalEntry).returning(
                JournalEntry.id, sort_by_parameter_order=True), [
                {"message_id": str(uuid.uuid4()), "received_at": moment,
                 "source": "ehr-adt-feed", "patient_key": f"patient-{n % patients}",
                 "status": "routed", "size_bytes": 10, "raw": b"x"}
                for n in range(start, start + len(part))]).scalars().all()
            rows = []
            for n, journal_id, destinations in zip(range(start, start + len(part)), ids, part,
                                                   strict=True):
                patient = f"patient-{n % patients}"
                for destination in destinations:
                    head = destination == LAB and patient not in heads
                    if head:
                        heads.add(patient)
                    rows.append({
                        "journal_id": journal_id, "destination": destination,
                        "patient_key": patient, "sequence": journal_id,
                        "status": "retrying" if head else "pending",
                        "next_attempt_at": moment + timedelta(hours=1) if head else None,
                        "idempotency_key": f"{journal_id}:{destination}", "payload": {},
                        "attempts": 1 if head else 0, "media_type": "application/json",
                        "body": "{}", "created_at": moment, "updated_at": moment})
            connection.execute(insert(Delivery), rows)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")


def unparked(engine: Engine) -> int:
    """Lab deliveries still pending with no time to look again: not parked yet."""
    with engine.connect() as connection:
        return int(connection.scalar(
            select(func.count()).select_from(Delivery).where(
                Delivery.destination == LAB, Delivery.status == "pending",
                Delivery.next_attempt_at.is_(None))) or 0)


def put_back(engine: Engine, status: str = "pending") -> None:
    """What a claim took goes back to pending (untimed), as if never claimed, or on to
    ``status``."""
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.status == "in_flight")
                           .values(status=status, next_attempt_at=None))


def measure(url: str, layout: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = open_engine(url)
    try:
        upgrade(engine)
        fill(engine, layout, args.blocked, args.patients, args.live)
        outbox = Outbox(engine)
        # The claims that park the backlog first found, each delivery once, a share at
        # a time: counted and timed apart from the claims that follow.
        parking: list[float] = []
        while unparked(engine):
            started = time.perf_counter()
            outbox.claim(args.limit)
            parking.append(time.perf_counter() - started)
            put_back(engine, "delivered")  # as a live destination would take them
        if layout != "idle":  # live deliveries newer than the parked backlog
            add(engine, [(ANALYTICS,)] * args.live, args.patients,
                {f"patient-{n}" for n in range(args.patients)})
        timings, taken = [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            chains = outbox.claim(args.limit)
            timings.append(time.perf_counter() - started)
            taken.append(sum(len(chain) for chain in chains))
            put_back(engine)
        return {"median_ms": round(statistics.median(timings) * 1e3, 2),
                "parking_claims": len(parking),
                "parking_ms": round(sum(parking) * 1e3, 1),
                "parking_longest_ms": round(max(parking, default=0.0) * 1e3, 1),
                "samples_ms": [round(t * 1e3, 2) for t in timings],
                "taken": statistics.median(taken)}
    finally:
        engine.dispose()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"sqlite": {}}
    for layout in LAYOUTS:
        url = f"sqlite:///{work / f'{layout}.db'}"
        results["sqlite"][layout] = measure(url, layout, args)
    if not args.skip_postgres:
        cluster = DurableCluster()
        cluster.start()
        try:
            results["postgres"] = {}
            for layout in LAYOUTS:
                url = cluster.create(f"switchboard_bench_claim_{layout}")
                results["postgres"][layout] = measure(url, layout, args)
        finally:
            cluster.cluster.destroy()
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"One claim of up to {args.limit}: {args.blocked:,} deliveries to {LAB} waiting "
          f"behind {args.patients} retrying heads; live ones to {ANALYTICS}: one per message "
          f"(interleaved), {args.live:,} newer (behind), none (idle); median of "
          f"{args.rounds} rounds")
    for store, layouts in results.items():
        for layout, result in layouts.items():
            print(f"  {store:<9} {layout:<12} {result['median_ms']:9.2f} ms  "
                  f"took {result['taken']:g}   parked first by {result['parking_claims']} "
                  f"claims, {result['parking_ms']:,.0f} ms in all, the longest "
                  f"{result['parking_longest_ms']:,.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocked", type=int, default=20_000)
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--live", type=int, default=1_000)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    if min(args.blocked, args.patients, args.limit, args.rounds) < 1 or args.live < 0:
        parser.error("--blocked, --patients, --limit and --rounds must be at least 1")
    with workspace(args.keep, "claim") as work:
        results = run(args, work)
    report(results, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        options = {name: value for name, value in vars(args).items()
                   if name not in ("json", "keep")}
        args.json.write_text(json.dumps({"options": options, "results": results},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
