"""Bulk reprocessing in the message browser on SQLite and PostgreSQL: each message
routed again as a single reprocess routes it, refusals kept with the job, progress read
from the audit trail, the reason on each message's timeline and never in the trail."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.message_bulk import MessageBulk
from engine.pipeline import Pipeline
from engine.queues import Invalid
from engine.reroute import Reroute
from engine.rule_versions import RuleSetCache, bootstrap
from engine.store.migrate import upgrade
from engine.store.models import AuditEvent, StageEvent
from tests.delivery_config import delivery_config, update
from tests.engine.test_reroute import SINK_URL, deliveries, publish, second_version
from tests.queue_rows import entry, ingest
from tests.waiting import wait_until

REASON = "version 1 left out the second sink; SECRET-NAME's clinic asked"


@pytest.fixture
def bulk(engine):
    jobs = MessageBulk(Reroute(engine, RuleSetCache(engine, recheck_after=0)), engine)
    yield jobs
    jobs.close()


def test_a_bulk_reprocess_routes_each_message_and_keeps_the_refusals(engine, bulk, tmp_path):
    upgrade(engine)
    bootstrap(engine, delivery_config(tmp_path / "v1", SINK_URL))
    routed = [ingest(engine, update(f"C{n}", f"MRN{n}", event="A04")) for n in (1, 2)]
    assert Pipeline(engine).run_once() == 2
    publish(engine, second_version(tmp_path / "v2"), 2)
    _, waiting = entry(engine, status="received")
    job = bulk.start("reprocess", [*routed, waiting, routed[0]], REASON, "olive")
    assert job.items == (*routed, waiting)
    started = bulk.progress(job.id)
    assert (started.total, started.done, started.finished) == (3, 0, False)
    bulk.launch(job)
    wait_until(lambda: bulk.progress(job.id).finished, what="the bulk reprocess")
    progress = bulk.progress(job.id)
    assert (progress.done, progress.handled, progress.percent) == (2, 3, 100)
    [(refused, why)] = progress.refused
    assert refused == waiting and "waiting to be routed already" in why
    for message_id in routed:
        assert set(deliveries(engine, message_id)) == {"test-sink", "second-sink"}
    with Session(engine) as session:
        trail = session.scalars(select(AuditEvent).where(
            AuditEvent.target_type.in_(("message", "message_bulk")))
            .order_by(AuditEvent.id)).all()
        notes = [e.detail["reason"] for e in session.scalars(
            select(StageEvent).where(StageEvent.stage == "rerouted"))]
    assert [(e.action, e.target_id) for e in trail] == [
        ("message.bulk", job.id), ("message.reprocess", routed[0]),
        ("message.reprocess", routed[1]), ("message.bulk_refused", job.id),
        ("message.bulk_done", job.id)]
    assert trail[1].detail["bulk"] == job.id
    assert notes == [REASON, REASON]
    assert "SECRET-NAME" not in json.dumps([e.detail for e in trail])


def test_a_bulk_reprocess_needs_a_reason_and_messages(engine, bulk):
    upgrade(engine)
    with pytest.raises(Invalid, match="needs a reason"):
        bulk.start("reprocess", ["m1"], " ", "olive")
    with pytest.raises(Invalid, match="no items were chosen"):
        bulk.start("reprocess", [], REASON, "olive")
    with pytest.raises(Invalid, match="no bulk action 'retry'"):
        bulk.start("retry", ["m1"], REASON, "olive")
