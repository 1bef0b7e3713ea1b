"""The REST API: messages with their stage timeline, routing and exceptions. Read-only;
the exception queue and the work queue have blueprints of their own (exceptions_api,
tasks_api). Responses carry identifiers and statuses, never message content."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.auth import require
from admin.queue_requests import paged
from admin.services import services
from engine.exception_queue import exception_summary
from engine.security.roles import Role
from engine.store.models import Delivery, ExceptionItem, JournalEntry, StageEvent, Task

blueprint = Blueprint("api", __name__, url_prefix="/api")
READERS = (Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE)


@blueprint.get("/messages")
@require(*READERS)
def list_messages() -> Any:
    query = select(JournalEntry)
    for column, name in ((JournalEntry.control_id, "control_id"),
                         (JournalEntry.source, "source"), (JournalEntry.status, "status"),
                         (JournalEntry.message_type, "type"), (JournalEntry.event, "event")):
        value = request.args.get(name)
        if value:
            query = query.where(column == value)
    patient = request.args.get("patient")
    if patient:
        authority = request.args.get("patient_authority", "")
        key = hashlib.sha256(f"{authority}|{patient}".encode()).hexdigest()[:32]
        query = query.where(JournalEntry.patient_key == key)
    for name, compare in (("since", JournalEntry.received_at.__ge__),
                          ("until", JournalEntry.received_at.__lt__)):
        if request.args.get(name):
            query = query.where(compare(_moment(name)))
    return jsonify(paged(query.order_by(JournalEntry.id.desc()), _message_summary))


@blueprint.get("/messages/<message_id>")
@require(*READERS)
def show_message(message_id: str) -> Any:
    with Session(services().reads) as session:
        entry = session.scalars(
            select(JournalEntry).where(JournalEntry.message_id == message_id)).first()
        if entry is None:
            abort(404, description=f"no message {message_id}")
        return jsonify(
            **_message_summary(entry),
            timeline=[{"stage": e.stage, "at": e.at.isoformat(),
                       "rule_set_version": e.rule_set_version}
                      for e in _children(session, StageEvent, entry.id)],
            deliveries=[{"destination": d.destination, "status": d.status,
                         "held_by_row": d.held_by_row, "attempts": d.attempts,
                         "idempotency_key": d.idempotency_key}
                        for d in _children(session, Delivery, entry.id)],
            tasks=[{"id": t.id, "queue": t.queue, "kind": t.kind, "mode": t.mode,
                    "status": t.status} for t in _children(session, Task, entry.id)],
            exceptions=[exception_summary(x)
                        for x in _children(session, ExceptionItem, entry.id)],
        )


def _children(session: Session, model: Any, journal_id: int) -> list[Any]:
    return list(session.scalars(
        select(model).where(model.journal_id == journal_id).order_by(model.id)))


def _message_summary(entry: JournalEntry) -> dict[str, Any]:
    return {
        "message_id": entry.message_id, "received_at": entry.received_at.isoformat(),
        "source": entry.source, "control_id": entry.control_id,
        "type": entry.message_type, "event": entry.event, "status": entry.status,
        "status_reason": entry.status_reason, "rule_set_version": entry.rule_set_version,
        "size_bytes": entry.size_bytes,
    }


def _moment(name: str) -> datetime:
    raw = request.args.get(name, "")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        abort(400, description=f"{name} must be an ISO 8601 time with an offset")
    if moment.tzinfo is None:
        abort(400, description=f"{name} must carry a UTC offset, e.g. 2026-11-24T08:00+00:00")
    return moment
