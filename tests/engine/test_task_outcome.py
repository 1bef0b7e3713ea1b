"""Task outcomes on SQLite and PostgreSQL: completing, approving or rejecting a task
journals an outcome event in the decision's own transaction (its own message id, the
task's patient), which the pipeline routes like any message: a route row on type TASK
sends the decision, with the originating message's canonical record, where it must go.
A completion carries a state when the task's route row names states, and only then."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.journal import now_utc
from engine.pipeline import Pipeline
from engine.queues import Invalid, Refused
from engine.rule_versions import bootstrap
from engine.security.users import UserStore
from engine.store.migrate import upgrade
from engine.store.models import (
    AuditEvent,
    Delivery,
    ExceptionItem,
    JournalEntry,
    StageEvent,
    Task,
)
from engine.work_queue import WorkQueue
from tests.delivery_config import update
from tests.queue_rows import as_, entry, ingest, sample, task

ROOT = Path(__file__).resolve().parents[2]
SINK = "status-sink"
REFERRAL = "fhir-converter/REF-I12-01.hl7"
STATES = ["accepted", "declined", "scheduled"]


def outcome_config(folder: Path) -> Path:
    """The shipped mappings; a referral makes a triage task whose completion names a
    state, an ADT update waits for a review, and completions and approvals (not
    rejections) go to ``status-sink``."""
    rules = folder / "rules"
    shutil.copytree(ROOT / "rules" / "mappings", rules / "mappings")
    shutil.copytree(ROOT / "rules" / "schema", rules / "schema")
    _write(rules / "routes" / "work.yaml", {"id": "work", "rows": [
        {"id": "referral-triage", "match": {"type": "REF", "event": "I12"}, "to": [],
         "checkpoint": {"mode": "notify", "queue": "triage", "kind": "referral-triage",
                        "states": STATES}},
        {"id": "update-review", "match": {"type": "ADT", "event": "A08"}, "to": [SINK],
         "checkpoint": {"mode": "hold", "queue": "review", "kind": "review"}},
        {"id": "decisions-to-sink", "match": {"type": "TASK",
                                              "event": ["completed", "approved"]},
         "to": [SINK]},
    ]})
    _write(rules / "policies" / "test.yaml", {"id": "test", "policies": [
        {"connections": ["*"], "error_classes": ["*"], "max_attempts": 3,
         "backoff": {"kind": "fixed", "delay": "1s"}, "dead_letter": {"owner_role": "operator"},
         "escalation": {"after": "1h", "notify_role": "admin"}}]})
    connections = folder / "catalog" / "connections"
    connections.mkdir(parents=True)
    shutil.copy(ROOT / "catalog" / "connections" / "ehr-adt-feed.yaml", connections)
    _write(connections / f"{SINK}.yaml", {
        "id": SINK, "name": "Status sink", "description": "Receives decisions.",
        "direction": "outbound", "transport": "http",
        "endpoint": {"url": "http://127.0.0.1:9/status", "method": "POST"},
        "format": "canonical-json",
        "business_owner": {"name": "Test Owner", "email": "owner@example.org"},
        "technical_owner": {"name": "Test Tech", "email": "tech@example.org",
                            "pager": "test-pager"},
        "classification": "phi", "recovery_procedure": "Start the sink again.",
        "data_scope": ["message", "patient.identifiers", "referrals", "task_outcome"],
    })
    # Who works which queue is the catalog's (item 7): the triage and outreach work
    # the clinicians' and operators', the review the approvers'.
    for queue, see, act in (("triage", ["operator"], ["clinician"]),
                            ("outreach", ["operator"], ["operator"]),
                            ("review", ["operator"], ["approver", "clinician"])):
        _write(connections / f"{queue}.yaml", {
            "id": queue, "name": queue.title(), "description": f"The {queue} queue.",
            "direction": "outbound", "transport": "task-queue",
            "endpoint": {"queue": queue}, "format": "canonical-json",
            "business_owner": {"name": "Test Owner", "email": "owner@example.org"},
            "technical_owner": {"name": "Test Tech", "email": "tech@example.org",
                                "pager": "test-pager"},
            "classification": "phi", "recovery_procedure": "Work the queue by hand.",
            "data_scope": ["message", "patient"],
            "task_access": {"see": see, "payload": act, "act": act}})
    return folder


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


@pytest.fixture
def work(engine, tmp_path) -> WorkQueue:
    upgrade(engine)
    bootstrap(engine, outcome_config(tmp_path / "config"))
    users = UserStore(engine)
    for name, role in (("cora", "clinician"), ("abe", "approver"), ("olive", "operator")):
        users.add(name, role, "test")
    return WorkQueue(engine)


def routed_task(engine, raw: bytes) -> tuple[int, int]:
    """``raw`` through the real pipeline: (the task it made, its journal id)."""
    ingest(engine, raw)
    assert Pipeline(engine).run_once() == 1
    with Session(engine) as session:
        made = session.scalars(select(Task).order_by(Task.id.desc())).first()
        assert made is not None
        return made.id, made.journal_id


def events(engine) -> list[JournalEntry]:
    with Session(engine) as session:
        return list(session.scalars(select(JournalEntry).where(
            JournalEntry.format == "task-outcome").order_by(JournalEntry.id)))


def deliveries_of(engine, journal_id: int) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.scalars(select(Delivery).where(
            Delivery.journal_id == journal_id).order_by(Delivery.id)))


def exceptions(engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(ExceptionItem.summary)))


def test_completing_journals_the_outcome_with_the_decision_and_it_is_routed(engine, work):
    task_id, journal_id = routed_task(engine, sample(REFERRAL))
    view = work.complete(task_id, as_("cora"), state="accepted", reason="booked with cardiology")
    assert view["status"] == "completed"
    (event,) = events(engine)
    with Session(engine) as session:
        origin = session.get(JournalEntry, journal_id)
        decided = session.get(Task, task_id)
        stages = session.scalars(select(StageEvent.stage).where(
            StageEvent.journal_id == event.id)).all()
    assert event.message_id != origin.message_id
    assert (event.source, event.status, event.message_type, event.event,
            event.control_id) == ("work-queue", "received", "TASK", "completed",
                                   f"task-{task_id}")
    # The same patient: its deliveries queue behind the referral's own.
    assert event.patient_key == origin.patient_key and event.patient_key is not None
    assert event.received_at == decided.completed_at
    assert stages == ["journaled"]
    assert decided.payload["decision"]["state"] == "accepted"

    assert Pipeline(engine).run_once() == 1
    with Session(engine) as session:
        assert session.get(JournalEntry, event.id).status == "routed"
    (delivery,) = deliveries_of(engine, event.id)
    assert (delivery.destination, delivery.status) == (SINK, "pending")
    assert delivery.patient_key == origin.patient_key
    payload = delivery.payload
    assert json.loads(delivery.body) == payload
    assert payload["message"]["type"] == "TASK"
    assert payload["message"]["event"] == "completed"
    outcome = payload["task_outcome"]
    assert {key: outcome.get(key) for key in (
        "task_id", "queue", "kind", "row_id", "outcome", "state", "reason",
        "decided_by_role")} == {
        "task_id": task_id, "queue": "triage", "kind": "referral-triage",
        "row_id": "referral-triage", "outcome": "completed", "state": "accepted",
        "reason": "booked with cardiology", "decided_by_role": "clinician"}
    assert (outcome["origin"]["message_id"], outcome["origin"]["type"],
            outcome["origin"]["control_id"]) == (origin.message_id, "REF", "MSG00112")
    # The originating message's canonical record, minimised to the sink's scope.
    assert payload["referrals"][0]["id"] == "226839"
    assert payload["patient"]["identifiers"][0]["value"] == "PATID1234"
    assert "names" not in payload["patient"]
    assert exceptions(engine) == []


def test_a_completion_names_a_state_its_route_row_allows(engine, work):
    task_id, _ = routed_task(engine, sample(REFERRAL))
    with pytest.raises(Invalid, match=r"needs a state: one of accepted, declined, "
                                      r"scheduled"):
        work.complete(task_id, as_("cora"))
    with pytest.raises(Invalid, match=r"'maybe' is not a state of task"):
        work.complete(task_id, as_("cora"), state="maybe")
    assert events(engine) == []
    assert work.summary(task_id)["status"] == "open"
    assert work.complete(task_id, as_("cora"), state="declined")["status"] == "completed"
    assert [e.event for e in events(engine)] == ["completed"]

    # A task whose row names no states takes none, and completes without one.
    journal_id, _ = entry(engine)
    plain = task(engine, journal_id, mode="notify", row_id="no-such-row", queue="outreach")
    with pytest.raises(Invalid, match="takes no state"):
        work.complete(plain, as_("olive"), state="accepted")
    work.complete(plain, as_("olive"))
    # So does a task for no message: its event names no patient.
    orphan = task(engine, None, mode="work", row_id=None, queue="outreach")
    work.complete(orphan, as_("olive"))
    assert [e.patient_key for e in events(engine)][1:] == ["p1", None]


def test_approval_and_rejection_are_outcome_events_in_the_patients_order(engine, work):
    approved, journal_id = routed_task(engine, update("U1", "MRN-1"))
    rejected, _ = routed_task(engine, update("U2", "MRN-2"))
    work.approve(approved, as_("abe"), reason="fine")
    work.reject(rejected, as_("cora"), "wrong patient")
    assert [(e.event, e.control_id) for e in events(engine)] == [
        ("approved", f"task-{approved}"), ("rejected", f"task-{rejected}")]
    assert Pipeline(engine).run_once() == 2
    first, second = events(engine)
    (released,) = deliveries_of(engine, journal_id)
    (decision,) = deliveries_of(engine, first.id)
    assert decision.payload["task_outcome"]["decided_by_role"] == "approver"
    assert decision.payload["task_outcome"]["reason"] == "fine"
    # One chain (destination, patient): the decision goes after the update it released.
    assert (decision.destination, decision.patient_key) == (
        released.destination, released.patient_key)
    assert (released.status, released.sequence < decision.sequence) == ("pending", True)
    # A rejection no row wants is routed nowhere, quietly: it is no failure.
    assert deliveries_of(engine, second.id) == []
    assert second.status == "routed"
    assert exceptions(engine) == []


def test_the_decision_and_its_event_commit_together_or_not_at_all(engine, work):
    task_id, _ = routed_task(engine, sample(REFERRAL))
    # A journal row already holding this task's event key makes the event's insert fail.
    with engine.begin() as connection:
        connection.execute(insert(JournalEntry).values(
            message_id="taken", received_at=now_utc(), source="work-queue",
            sending_application="", sending_facility="", control_id=f"task-{task_id}",
            status="routed", size_bytes=0, raw=b"", is_original=True, format="task-outcome"))
    with pytest.raises(IntegrityError):
        work.complete(task_id, as_("cora"), state="scheduled")
    assert work.summary(task_id)["status"] == "open"
    with Session(engine) as session:
        assert session.scalars(select(AuditEvent).where(
            AuditEvent.target_type == "task")).all() == []
    # Settled once, a task is never decided (nor journaled) again.
    with engine.begin() as connection:
        connection.execute(JournalEntry.__table__.delete().where(
            JournalEntry.message_id == "taken"))
    work.complete(task_id, as_("cora"), state="scheduled")
    with pytest.raises(Refused):
        work.complete(task_id, as_("cora"), state="scheduled")
    assert len(events(engine)) == 1
