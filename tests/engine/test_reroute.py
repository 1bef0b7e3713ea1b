"""Reprocessing a message on SQLite and PostgreSQL: a routed message run again under
the rules published now gets deliveries only to the destinations it has none to (the
one a broken route missed, encoded, in its patient's order; one held for a review
with the review's task), and a second reprocess adds nothing; a message that failed in
the pipeline goes back to it, its exception retried; anything else is refused. Each is
audited without its reason, which the message's timeline keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.exception_queue import ExceptionQueue
from engine.journal import now_utc
from engine.pipeline import Pipeline
from engine.queues import NotFound, Refused
from engine.reroute import Reroute
from engine.rule_versions import RuleSetCache, announce_published, bootstrap
from engine.rules.snapshot import content_hash, to_content
from engine.rules.source import read_rule_source
from engine.store.migrate import upgrade
from engine.store.models import (
    AuditEvent,
    Delivery,
    ExceptionItem,
    JournalEntry,
    RuleSetVersion,
    StageEvent,
    Task,
)
from tests.delivery_config import SINK, delivery_config, update
from tests.engine.test_exception_queue import failed_message, journal_status
from tests.queue_rows import entry, ingest, prepared

SINK_URL = "http://127.0.0.1:9/events"  # never sent to: these tests only route


def second_version(folder: Path) -> Path:
    """The delivery configuration, and two more rows: every message to second-sink,
    and updates (A08) to reviewed-sink once a nurse has reviewed them."""
    config = delivery_config(folder, SINK_URL, hold=True)
    connections = config / "catalog" / "connections"
    sink = yaml.safe_load((connections / f"{SINK}.yaml").read_text())
    for name in ("second-sink", "reviewed-sink"):
        (connections / f"{name}.yaml").write_text(yaml.safe_dump({**sink, "id": name}))
    (config / "rules" / "routes" / "everything.yaml").write_text(yaml.safe_dump({
        "id": "everything", "description": "Every message to the sinks.", "rows": [
            {"id": "all-to-test-sink", "to": [SINK]},
            {"id": "all-to-second-sink", "to": ["second-sink"]},
            {"id": "updates-after-review", "match": {"type": "ADT", "event": "A08"},
             "to": ["reviewed-sink"], "checkpoint": {"mode": "hold", "queue": "review",
                                                     "kind": "review", "due": "1h"}}]}))
    return config


def publish(engine, config: Path, version: int) -> None:
    content = to_content(read_rule_source(config))
    with Session(engine) as session, session.begin():
        moment = now_utc()
        for old in session.scalars(select(RuleSetVersion).where(
                RuleSetVersion.status == "published")):
            old.status, old.superseded_at = "superseded", moment
        session.add(RuleSetVersion(version=version, status="published", author="ana",
                                   approver="abe", content=content,
                                   content_hash=content_hash(content), created_at=moment,
                                   published_at=moment))
        session.flush()
        announce_published(session.connection(), version)


@pytest.fixture
def routed(engine, tmp_path):
    """An update routed under version 1, which sends it to the test sink alone; then
    version 2 published, which sends it to two more destinations."""
    upgrade(engine)
    bootstrap(engine, delivery_config(tmp_path / "v1", SINK_URL))
    message_id = ingest(engine, update("C1", "MRN1"))
    assert Pipeline(engine).run_once() == 1
    publish(engine, second_version(tmp_path / "v2"), 2)
    return message_id


def deliveries(engine, message_id: str) -> dict[str, Delivery]:
    with Session(engine) as session:
        return {d.destination: d for d in session.scalars(
            select(Delivery).join(JournalEntry, JournalEntry.id == Delivery.journal_id)
            .where(JournalEntry.message_id == message_id))}


def reprocess_events(engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(
            AuditEvent.action == "message.reprocess").order_by(AuditEvent.id)))


def test_a_routed_message_gets_only_what_it_missed(engine, routed):
    before = deliveries(engine, routed)
    assert set(before) == {SINK}
    reroute = Reroute(engine, RuleSetCache(engine, recheck_after=0))
    done = reroute.reprocess(routed, "olive", "the second sink was left out of version 1")
    assert (done.outcome, done.version, set(done.added)) == (
        "routed", 2, {"second-sink", "reviewed-sink"})
    after = deliveries(engine, routed)
    assert after[SINK].id == before[SINK].id  # untouched: no duplicate
    with Session(engine) as session:
        journal_id = session.scalar(select(JournalEntry.id).where(
            JournalEntry.message_id == routed))
        review = session.scalars(select(Task).where(Task.journal_id == journal_id)).one()
        rerouted = session.scalars(select(StageEvent).where(
            StageEvent.journal_id == journal_id, StageEvent.stage == "rerouted")).one()
    second, reviewed = after["second-sink"], after["reviewed-sink"]
    assert (second.status, second.idempotency_key, second.sequence, second.patient_key) == (
        "pending", f"{routed}:second-sink", journal_id, before[SINK].patient_key)
    assert second.media_type == "application/json" and '"control_id":"C1"' in second.body
    assert second.payload["message"]["control_id"] == "C1"
    assert (reviewed.status, reviewed.held_by_row) == ("held", "updates-after-review")
    assert (review.queue, review.row_id, review.status, review.mode) == (
        "review", "updates-after-review", "open", "hold")
    assert rerouted.rule_set_version == 2
    assert rerouted.detail["reason"] == "the second sink was left out of version 1"
    [event] = reprocess_events(engine)
    assert (event.actor, event.target_id) == ("olive", routed)
    assert event.detail == {"outcome": "routed", "rule_set_version": 2,
                            "added": list(done.added)}
    assert "left out" not in str(event.detail) and event.reason is None

    again = reroute.reprocess(routed, "olive")
    assert again.added == ()
    assert len(deliveries(engine, routed)) == 3
    assert len(reprocess_events(engine)) == 2


def test_a_delivery_held_by_a_review_already_decided_follows_that_decision(engine, routed):
    with Session(engine) as session, session.begin():
        journal_id = session.scalar(select(JournalEntry.id).where(
            JournalEntry.message_id == routed))
        session.add(Task(journal_id=journal_id, queue="review", kind="review", mode="hold",
                         row_id="updates-after-review", status="rejected",
                         created_at=now_utc()))
    Reroute(engine, RuleSetCache(engine, recheck_after=0)).reprocess(routed, "olive")
    assert deliveries(engine, routed)["reviewed-sink"].status == "cancelled"


def test_a_message_that_failed_in_the_pipeline_goes_back_to_it(engine, monkeypatch):
    prepared(engine)
    item_id, message_id = failed_message(engine, monkeypatch)
    done = Reroute(engine).reprocess(message_id, "olive", "the encoder is fixed")
    assert done.outcome == "requeued"
    assert journal_status(engine, message_id) == "received"
    assert ExceptionQueue(engine).show(item_id)["status"] == "retried"
    [event] = reprocess_events(engine)
    assert event.detail == {"outcome": "requeued", "added": [], "exception": item_id}
    assert Pipeline(engine).run_once() == 1
    assert journal_status(engine, message_id) == "routed"


def test_a_failed_message_whose_exception_was_settled_is_requeued_all_the_same(engine):
    prepared(engine)
    journal_id, message_id = entry(engine, status="failed")
    with engine.begin() as connection:
        connection.execute(ExceptionItem.__table__.insert().values(
            journal_id=journal_id, connection_id="ehr-adt-feed", error_class="validation",
            owner_role="operator", status="resolved", summary="x", created_at=now_utc()))
    done = Reroute(engine).reprocess(message_id, "olive", "try again", bulk="job-1")
    assert done.outcome == "requeued"
    assert journal_status(engine, message_id) == "received"
    with Session(engine) as session:
        requeued = session.scalars(select(StageEvent).where(
            StageEvent.journal_id == journal_id, StageEvent.stage == "requeued")).one()
    assert requeued.detail == {"reprocess": {"by": "olive", "reason": "try again",
                                             "bulk": "job-1"}}
    [event] = reprocess_events(engine)
    assert event.detail == {"outcome": "requeued", "added": [], "bulk": "job-1"}


@pytest.mark.parametrize(("status", "words"), [
    ("received", "is waiting to be routed already"),
    ("held", "waits behind a failed message"),
    ("rejected", "was rejected when received: there is nothing to route"),
    ("duplicate", "was duplicate when received"),
])
def test_a_message_in_no_state_to_be_routed_is_refused(engine, status, words):
    prepared(engine)
    _, message_id = entry(engine, status=status)
    with pytest.raises(Refused, match=words):
        Reroute(engine).reprocess(message_id, "olive")
    assert reprocess_events(engine) == []


def test_an_unknown_message_is_not_found(engine):
    prepared(engine)
    with pytest.raises(NotFound, match="no message nope"):
        Reroute(engine).reprocess("nope", "olive")
