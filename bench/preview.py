"""Benchmark: the impact preview's speed, on SQLite and optionally PostgreSQL. Goal:
10,000 messages in 30 s or less.

A fresh store gets the shipped configuration as published version 1 and ``--messages``
journal rows: the HL7 v2 corpus (tests/corpus/hl7v2/fhir-converter) over and over,
inserted in bulk as the journal writes them (each file read once by the journal's own
``entry_fields``, then copied with a new message id and receive time, status ``routed``;
the copies are not dedupe originals, so the journal's unique index lets them repeat).
A draft moves the bed board's route to the South Clinic, as the tests' draft does.
Each round requests a preview of the last ``--messages`` messages and times
``PreviewRunner.run_pending`` from the claim to the stored report (compiling both
versions, reading the journal in chunks, replaying every message through both versions,
progress commits); the figure is the median over ``--rounds``.

    python -m bench.preview [--messages 10000] [--rounds 3] [--json FILE]
                            [--postgres URL | --postgres private] [--profile FILE]

``--postgres URL`` names a server: the benchmark makes a database of its own there and
drops it afterwards; ``private`` starts a throwaway cluster (fsync on). ``--profile``
writes cProfile statistics of one more run on SQLite.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from bench.mllp_load import DEFAULT_CORPUS
from bench.serving import ROOT, DurableCluster, workspace
from engine.impact_preview import DONE, PreviewRunner, preview_state, request_preview
from engine.journal import Received, entry_fields, now_utc
from engine.rule_versions import bootstrap
from engine.rules.snapshot import content_hash
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from engine.store.models import JournalEntry, RuleSetVersion

GOAL_MESSAGES, GOAL_SECONDS = 10_000, 30.0
BATCH = 1000


def corpus_rows() -> list[dict[str, Any]]:
    """A journal row for each readable corpus file, as the journal would write it."""
    rows = []
    for path in sorted(DEFAULT_CORPUS.glob("*.hl7")):
        row, error = entry_fields(Received(path.read_bytes(), "ehr-adt-feed"))
        if error is None:
            rows.append(row)
    return rows


def fill_journal(engine: Engine, messages: int) -> None:
    """``messages`` routed journal rows, a second apart, cycling through the corpus."""
    templates = corpus_rows()
    start = now_utc() - timedelta(seconds=messages)
    batch: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for number in range(messages):
            row = dict(templates[number % len(templates)])
            row.update(message_id=str(uuid.uuid4()), status="routed", rule_set_version=1,
                       received_at=start + timedelta(seconds=number))
            batch.append(row)
            if len(batch) == BATCH:
                connection.execute(insert(JournalEntry), batch)
                batch = []
        if batch:
            connection.execute(insert(JournalEntry), batch)


def add_draft(engine: Engine) -> int:
    """Version 2: version 1 with the bed board's route moved to the South Clinic."""
    with Session(engine) as session, session.begin():
        first = session.scalars(select(RuleSetVersion).where(RuleSetVersion.version == 1)).one()
        content = copy.deepcopy(first.content)
        for doc in content["documents"]:
            if doc["path"] == "rules/routes/registration.yaml":
                for row in doc["data"]["rows"]:
                    if row["id"] == "patient-flow-to-bed-board":
                        row["to"] = ["clinic-south"]
        draft = RuleSetVersion(version=2, status="draft", parent_id=first.id, author="bench",
                               content=content, content_hash=content_hash(content),
                               created_at=now_utc())
        session.add(draft)
        session.flush()
        return draft.id


def prepare(url: str, messages: int) -> tuple[Engine, int]:
    engine = open_engine(url)
    upgrade(engine)
    bootstrap(engine, ROOT)
    fill_journal(engine, messages)
    return engine, add_draft(engine)


def one_preview(engine: Engine, draft_id: int, messages: int) -> tuple[float, dict[str, Any]]:
    """Seconds to run one preview of the last ``messages`` messages, and its state."""
    with Session(engine) as session, session.begin():
        version = session.get(RuleSetVersion, draft_id)
        assert version is not None
        preview_id = request_preview(session, version, {"limit": messages}, "bench").id
    started = time.perf_counter()
    PreviewRunner(engine).run_pending()
    seconds = time.perf_counter() - started
    with Session(engine) as session:
        state = preview_state(session, preview_id)
    if state["status"] != DONE:
        raise RuntimeError(f"the preview ended {state['status']}: {state['error']}")
    return seconds, state


def measure(url: str, messages: int, rounds: int) -> dict[str, Any]:
    engine, draft_id = prepare(url, messages)
    try:
        timings, state = [], {}
        for _ in range(rounds):
            seconds, state = one_preview(engine, draft_id, messages)
            timings.append(seconds)
        median = statistics.median(timings)
        summary = state["summary"]
        return {
            "messages": state["journal_messages"] + state["test_messages"],
            "journal_messages": state["journal_messages"],
            "changed": summary["changed"],
            "median_s": round(median, 3),
            "median_msgs_per_s": round(messages / median),
            "seconds_for_10000": round(median * GOAL_MESSAGES / messages, 2),
            "samples_s": [round(t, 3) for t in timings],
        }
    finally:
        engine.dispose()


def profile(url: str, messages: int, out: Path) -> None:
    engine, draft_id = prepare(url, messages)
    try:
        profiler = cProfile.Profile()
        profiler.enable()
        one_preview(engine, draft_id, messages)
        profiler.disable()
        profiler.dump_stats(str(out))
    finally:
        engine.dispose()


def postgres_database(server: str) -> tuple[str, Any]:
    """A fresh database on ``server`` ("private": a throwaway cluster), and its cleanup."""
    name = f"switchboard_bench_preview_{uuid.uuid4().hex[:8]}"
    if server == "private":
        cluster = DurableCluster()
        cluster.start()
        return cluster.create(name), cluster.destroy
    admin = open_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin.url.set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url, drop


def report(results: dict[str, Any], messages: int, rounds: int) -> None:
    print(f"Impact preview: {messages:,} journaled messages through the published version "
          f"and a draft, median of {rounds} rounds (goal: {GOAL_MESSAGES:,} in "
          f"{GOAL_SECONDS:g} s or less)")
    for store, result in results.items():
        verdict = "meets" if result["seconds_for_10000"] <= GOAL_SECONDS else "MISSES"
        print(f"  {store:<9} {result['median_s']:8.2f} s  {result['median_msgs_per_s']:8,} "
              f"msgs/s  {result['seconds_for_10000']:6.2f} s per 10,000 ({verdict} the goal;"
              f" {result['changed']:,} changed)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=GOAL_MESSAGES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="a server URL, or 'private'")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with workspace(args.keep, "preview") as work:
        results["sqlite"] = measure(f"sqlite:///{work / 'sb.db'}", args.messages, args.rounds)
        if args.profile:
            profile(f"sqlite:///{work / 'profile.db'}", args.messages, args.profile)
        if args.postgres:
            url, cleanup = postgres_database(args.postgres)
            try:
                results["postgres"] = measure(url, args.messages, args.rounds)
            finally:
                cleanup()
    report(results, args.messages, args.rounds)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    met = all(r["seconds_for_10000"] <= GOAL_SECONDS for r in results.values())
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
