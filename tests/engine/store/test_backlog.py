"""The backlog gauges (issue 13), read from the store on SQLite and PostgreSQL: per
connection, the age of the oldest unrouted message and of the oldest waiting delivery,
and the messages isolated as poison."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import update
from sqlalchemy.orm import Session

from engine.backlog import BacklogCollector, read_backlog
from engine.ingest import Ingestor
from engine.journal import Journal, Received, now_utc
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.store.migrate import upgrade
from engine.store.models import Delivery, JournalEntry
from tests.delivery_config import update as adt_update
from tests.engine.store.test_poison import journaled_as_before

ROOT = Path(__file__).resolve().parents[3]


def test_ages_and_poison_per_connection(engine):
    upgrade(engine)
    bootstrap(engine, ROOT)
    ingestor = Ingestor(Journal(engine))
    ingestor.ingest(Received(adt_update("ROUTED-1", "MRN-1"), "ehr-adt-feed"))
    poison = adt_update("POISON-1", "MRN-2").replace(b"JANE", b"J\xffNE")
    journaled_as_before(engine, poison, "POISON-1")
    Pipeline(engine).run_once()  # routes the first, isolates the poison
    ingestor.ingest(Received(adt_update("WAITING-1", "MRN-3"), "ehr-adt-feed"))
    an_hour_ago = now_utc() - timedelta(hours=1)
    with Session(engine) as session, session.begin():
        session.execute(update(JournalEntry).where(JournalEntry.control_id == "WAITING-1")
                        .values(received_at=an_hour_ago))
        session.execute(update(Delivery).values(created_at=an_hour_ago))

    backlog = read_backlog(engine)
    assert backlog.oldest_unrouted == {"ehr-adt-feed": an_hour_ago}
    assert backlog.oldest_waiting_delivery == {"analytics-warehouse": an_hour_ago,
                                               "lab-system": an_hour_ago}
    assert backlog.poison == {"ehr-adt-feed": 1}

    registry = CollectorRegistry(auto_describe=False)
    registry.register(BacklogCollector(engine, ["ehr-adt-feed", "bed-board"]))
    lines = generate_latest(registry).decode().splitlines()
    assert 'switchboard_poison_messages{connection="ehr-adt-feed"} 1.0' in lines
    assert 'switchboard_poison_messages{connection="bed-board"} 0.0' in lines
    age = next(float(line.split()[-1]) for line in lines if line.startswith(
        'switchboard_oldest_unrouted_age_seconds{connection="ehr-adt-feed"}'))
    assert 3600 <= age < 7200
    assert any(line.startswith(
        'switchboard_oldest_pending_delivery_age_seconds{connection="lab-system"} 36')
        for line in lines)
