"""Escalation on SQLite and PostgreSQL: an exception item still open after its policy's
delay gets one escalation task for the policy's role, paging the technical owner when
the policy says so, and an audit event."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.connectors.sink import DeliveryFailed
from engine.escalation import QUEUE, escalate_due
from engine.ingest import Ingestor
from engine.journal import Journal, Received, now_utc
from engine.outbox import Attempt
from engine.rule_versions import RuleSetCache, bootstrap, exception_owner
from engine.rules.exception_policy import ErrorClass
from engine.security.audit import AuditLog
from engine.store.migrate import upgrade
from engine.store.models import AuditEvent, Delivery, ExceptionItem, Task
from tests.engine.store.test_outbox import RULES, deliveries, journal, store

ROOT = Path(__file__).resolve().parents[3]


def dead_letter(engine, error_class: ErrorClass, destination: str,
                attempts_made: int) -> ExceptionItem:
    """A delivery whose last allowed attempt fails now."""
    outbox = store(engine)
    bootstrap(engine, ROOT)
    deliveries(engine, journal(engine, 1, "p1"), destination=destination)
    with engine.begin() as connection:
        connection.execute(update(Delivery).values(attempts=attempts_made))
    (chain,) = outbox.claim(limit=1)
    failure = DeliveryFailed(error_class, f"no answer from {destination}")
    outbox.record([Attempt(chain[0], now_utc(), failure)], [], RULES)
    with Session(engine) as session:
        return session.scalars(select(ExceptionItem)).one()


def escalation_tasks(engine) -> list[Task]:
    with Session(engine) as session:
        return list(session.scalars(select(Task).where(Task.queue == QUEUE)))


def test_an_open_item_escalates_once_after_its_delay(engine):
    # default-delivery: transport errors dead-letter after 8 attempts, escalate to admin
    # after 30 minutes and page the technical owner.
    item = dead_letter(engine, ErrorClass.TRANSPORT_ERROR, "clinic-north", attempts_made=7)
    assert item.escalate_to == "admin"
    rule_sets = RuleSetCache(engine)
    assert escalate_due(engine, rule_sets, now=item.escalate_at - timedelta(seconds=1)) == 0
    assert escalation_tasks(engine) == []
    assert escalate_due(engine, rule_sets, now=item.escalate_at) == 1
    (task,) = escalation_tasks(engine)
    owner = RULES.connections["clinic-north"].technical_owner
    assert (task.kind, task.mode, task.status, task.journal_id) == (
        "escalation", "notify", "open", item.journal_id)
    assert task.payload == {
        "exception_id": item.id, "notify_role": "admin", "connection": "clinic-north",
        "error_class": "transport_error",
        "page": {"name": owner.name, "pager": owner.pager, "phone": owner.phone}}
    assert escalate_due(engine, rule_sets, now=item.escalate_at + timedelta(hours=1)) == 0
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent)
                                .where(AuditEvent.action == "exception.escalated")).one()
    assert (event.actor, event.target_id, event.detail) == (
        "system", str(item.id), {"notify_role": "admin", "paged": True})
    assert AuditLog(engine).verify() == []


def test_a_resolved_item_does_not_escalate_and_no_page_unless_asked(engine):
    # default-delivery: rejected escalates after 4 h, without paging.
    item = dead_letter(engine, ErrorClass.REJECTED, "clinic-north", attempts_made=0)
    rule_sets = RuleSetCache(engine)
    later = item.escalate_at + timedelta(seconds=1)
    with engine.begin() as connection:
        connection.execute(update(ExceptionItem).values(status="resolved"))
    assert escalate_due(engine, rule_sets, now=later) == 0
    with engine.begin() as connection:
        connection.execute(update(ExceptionItem).values(status="open"))
    assert escalate_due(engine, rule_sets, now=later) == 1
    (task,) = escalation_tasks(engine)
    assert task.payload["page"] is None


def test_an_ingest_exception_escalates_as_its_policy_says(engine):
    upgrade(engine)
    bootstrap(engine, ROOT)
    rule_sets = RuleSetCache(engine)
    journal = Journal(engine, exception_owner(rule_sets))
    try:
        Ingestor(journal).ingest(Received(b"this is not HL7", "ehr-adt-feed"))
    finally:
        journal.close()
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem)).one()
    # default-delivery: validation belongs to analysts and escalates to admin after 1 d.
    assert (item.error_class, item.owner_role, item.escalate_to) == (
        "validation", "analyst", "admin")
    assert (item.escalate_at - item.created_at).total_seconds() == 86400
    assert escalate_due(engine, rule_sets, now=item.escalate_at) == 1
    (task,) = escalation_tasks(engine)
    assert task.payload["exception_id"] == item.id


def test_engines_escalating_at_once_escalate_each_item_once(engine):
    item = dead_letter(engine, ErrorClass.TRANSPORT_ERROR, "clinic-north", attempts_made=7)
    for _ in range(5):  # more due items, so that the passes overlap
        with Session(engine) as session, session.begin():
            copy = {c.name: getattr(item, c.name) for c in ExceptionItem.__table__.columns
                    if c.name != "id"}
            session.add(ExceptionItem(**copy))
    start = threading.Barrier(4)
    counts: list[int] = []

    def engine_pass() -> None:
        rule_sets = RuleSetCache(engine)
        start.wait()
        counts.append(escalate_due(engine, rule_sets, now=item.escalate_at))

    threads = [threading.Thread(target=engine_pass) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(counts) == 6
    assert len(escalation_tasks(engine)) == 6
