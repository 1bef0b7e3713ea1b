"""Hot reload on SQLite and PostgreSQL: a version published while engines run is picked
up without a restart (announced on PostgreSQL, polled on SQLite), and messages routed
after the pickup record the new version."""

from __future__ import annotations

import math
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.hl7v2 import parse
from engine.ingest import Ingestor
from engine.journal import Journal, Received
from engine.pipeline import Pipeline
from engine.rule_versions import Announcements, RuleSetCache, bootstrap
from engine.store.migrate import upgrade
from engine.store.models import JournalEntry
from tests.republish import publish_copy
from tests.samples import CORPUS
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]


def test_a_published_version_is_picked_up_without_a_restart(engine):
    upgrade(engine)
    bootstrap(engine, ROOT)
    # On PostgreSQL the cache never polls, so only the announcement can bring the new
    # version in; SQLite has no announcements and keeps polling.
    announcements = Announcements.of(engine)
    cache = RuleSetCache(engine, recheck_after=1.0 if announcements is None else math.inf)
    assert cache.current().version == 1
    if announcements is not None:  # its LISTEN is in place once it has looked once
        wait_until(lambda: announcements.heard >= 1, what="the LISTEN connection")
        cache.current()
    publish_copy(engine, 2)
    wait_until(lambda: cache.current().version == 2, what="version 2 to be picked up")


def test_messages_routed_after_the_pickup_record_the_new_version(engine):
    upgrade(engine)
    bootstrap(engine, ROOT)
    sb = Ingestor(Journal(engine))
    cache = RuleSetCache(engine, recheck_after=0.0)
    pipeline = Pipeline(engine, rule_sets=cache)
    sample = (CORPUS / "fhir-converter/ORU-R01-RMGEAD.hl7").read_bytes()
    sb.ingest(Received(sample, "ehr-adt-feed"))
    assert pipeline.run_once() == 1
    publish_copy(engine, 2)
    second = parse(sample)
    second.set("MSH-10", "HOT-RELOAD-2")
    sb.ingest(Received(second.encode(), "ehr-adt-feed"))
    assert pipeline.run_once() == 1
    with Session(engine) as session:
        versions = session.scalars(select(JournalEntry.rule_set_version)
                                   .order_by(JournalEntry.id)).all()
    assert versions == [1, 2]
