"""Pipeline worker processes: they route what the journal holds, report their counts
to the parent's metrics, are started again when one dies, and stop when asked."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import metrics
from engine.hl7v2 import parse
from engine.ingest import Ingestor
from engine.journal import Journal, Received
from engine.pipeline_workers import WorkerPool
from engine.rule_versions import bootstrap
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from engine.store.models import JournalEntry
from tests.samples import CORPUS
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def routed_count() -> float:
    return metrics.ROUTED.labels("ehr-adt-feed")._value.get()


def test_workers_route_report_restart_and_stop(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_engine(url)
    upgrade(engine)
    bootstrap(engine, ROOT)
    ingestor = Ingestor(Journal(engine))
    raw = (CORPUS / "fhir-converter/ADT-A04-01.hl7").read_bytes()

    def send(count: int, prefix: str) -> None:
        for number in range(count):
            message = parse(raw)
            message.set("MSH-10", f"{prefix}{number}")
            message.set("PID-3.1", f"{prefix}{number}")
            ingestor.ingest(Received(message.encode(), "ehr-adt-feed"))

    def statuses() -> set[str]:
        with Session(engine) as session:
            return set(session.scalars(select(JournalEntry.status)))

    before = routed_count()
    pool = WorkerPool(url, 2)
    pool.start()
    try:
        send(20, "W")
        wait_until(lambda: statuses() == {"routed"}, what="every message routed")
        wait_until(lambda: routed_count() == before + 20, what="the workers' counts reported")
        wait_until(pool.alive, what="every worker alive")
        victim = pool._processes[0]
        assert victim is not None and victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        wait_until(lambda: pool._processes[0] is not victim and pool.alive(),
                   what="the killed worker started again")
        send(10, "X")
        wait_until(lambda: statuses() == {"routed"}, what="the later messages routed")
    finally:
        pool.stop(grace=10)
    assert not any(p is not None and p.is_alive() for p in pool._processes)
    engine.dispose()
