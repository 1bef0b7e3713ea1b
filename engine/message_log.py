"""The message log: journaled messages with their stage timeline, deliveries, tasks
and exception items, as the REST API and ``switchboard messages`` show them. Views
carry identifiers, statuses and PHI-free reasons, never message content."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.orm import Session

from engine.exception_queue import exception_summary
from engine.journal import patient_key_of
from engine.queues import Invalid, NotFound, Page, aware_moment, check_page, iso
from engine.store.database import reader
from engine.store.models import Delivery, ExceptionItem, JournalEntry, StageEvent, Task

FILTERS: Mapping[str, Any] = {
    "control_id": JournalEntry.control_id, "source": JournalEntry.source,
    "status": JournalEntry.status, "type": JournalEntry.message_type,
    "event": JournalEntry.event,
}
"""Filters that match a column exactly; ``patient`` (with ``patient_authority``),
``since`` and ``until`` are read apart."""


class MessageLog:
    def __init__(self, engine: Engine) -> None:
        self._reads = reader(engine)

    def list(self, filters: Mapping[str, Any], page: int = 1, per_page: int = 50) -> Page:
        """Messages matching every filter given, newest first. ``since`` and ``until``
        are ISO 8601 times with an offset; ``patient`` is the identifier PID-3.1 holds."""
        check_page(page, per_page)
        query = _filtered(select(JournalEntry), filters)
        with Session(self._reads) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(query.order_by(JournalEntry.id.desc())
                                   .limit(per_page).offset((page - 1) * per_page)).all()
            return Page([message_summary(row) for row in rows], page, per_page, total)

    def show(self, message_id: str) -> dict[str, Any]:
        with Session(self._reads) as session:
            entry = session.scalars(
                select(JournalEntry).where(JournalEntry.message_id == message_id)).first()
            if entry is None:
                raise NotFound(f"no message {message_id}",
                               hint="List messages to find its id")
            return {
                **message_summary(entry),
                "timeline": [{"stage": e.stage, "at": e.at.isoformat(),
                              "rule_set_version": e.rule_set_version}
                             for e in _children(session, StageEvent, entry.id)],
                "deliveries": [delivery_view(d)
                               for d in _children(session, Delivery, entry.id)],
                "tasks": [{"id": t.id, "queue": t.queue, "kind": t.kind, "mode": t.mode,
                           "status": t.status} for t in _children(session, Task, entry.id)],
                "exceptions": [exception_summary(x)
                               for x in _children(session, ExceptionItem, entry.id)],
            }


def message_summary(entry: JournalEntry) -> dict[str, Any]:
    return {
        "message_id": entry.message_id, "received_at": entry.received_at.isoformat(),
        "source": entry.source, "control_id": entry.control_id,
        "type": entry.message_type, "event": entry.event, "status": entry.status,
        "status_reason": entry.status_reason, "rule_set_version": entry.rule_set_version,
        "size_bytes": entry.size_bytes,
    }


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    """A delivery's state, and for one that failed, why (its last error is the sink's
    PHI-free reason) and when it goes again."""
    return {
        "destination": delivery.destination, "status": delivery.status,
        "held_by_row": delivery.held_by_row, "attempts": delivery.attempts,
        "error_class": delivery.error_class, "last_error": delivery.last_error,
        "next_attempt_at": iso(delivery.next_attempt_at)
        if delivery.status == "retrying" else None,
        "delivered_at": iso(delivery.delivered_at),
        "idempotency_key": delivery.idempotency_key,
    }


def _filtered(query: Select[Any], filters: Mapping[str, Any]) -> Select[Any]:
    for name, value in filters.items():
        if value is None or value == "":
            continue
        if name in FILTERS:
            query = query.where(FILTERS[name] == value)
        elif name == "patient":
            key = patient_key_of(str(value), str(filters.get("patient_authority") or ""))
            query = query.where(JournalEntry.patient_key == key)
        elif name == "since":
            query = query.where(JournalEntry.received_at >= aware_moment(name, value))
        elif name == "until":
            query = query.where(JournalEntry.received_at < aware_moment(name, value))
        elif name != "patient_authority":
            raise Invalid(f"unknown filter {name!r}", hint="Filter by: " + ", ".join(
                [*FILTERS, "patient", "patient_authority", "since", "until"]))
    return query


def _children(session: Session, model: Any, journal_id: int) -> list[Any]:
    return list(session.scalars(
        select(model).where(model.journal_id == journal_id).order_by(model.id)))
