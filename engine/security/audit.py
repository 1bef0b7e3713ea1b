"""The audit trail: an append-only, hash-chained record of every security change.

Each event's hash covers the previous event's hash and its own fields, so editing,
deleting or reordering a stored event breaks the chain where it happened, and
:meth:`AuditLog.verify` names it. The chain only stays single if appends are
serialised: two writers reading the same tail would fork it. On PostgreSQL an
advisory lock held to the end of the transaction does that; on SQLite the transaction
takes the database's one write lock before reading the tail.

``detail`` is kept in clear for auditors: it must never hold secrets (tokens,
passwords) or PHI. Name things by id instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from engine.errors import SwitchboardError
from engine.store.models import AuditEvent

# The key of the PostgreSQL advisory lock that serialises appends: "SBAUDIT\0" in ASCII.
AUDIT_CHAIN_LOCK = 0x5342_4155_4449_5400
ACTOR_MAX_LENGTH = 64

Clock = Callable[[], datetime]


class AuditError(SwitchboardError):
    """An audit event that cannot be recorded as given."""


def now_utc() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """Appends to and checks the audit chain in the database behind ``engine``."""

    def __init__(self, engine: Engine, clock: Clock = now_utc) -> None:
        self._engine = engine
        self._clock = clock

    def lock(self, session: Session) -> None:
        """Hold the chain for the rest of ``session``'s transaction.

        Call it first in a transaction that checks state before changing it, so the
        check and the change are serialised with other writers too. Calling it again in
        the same transaction is harmless."""
        connection = session.connection()
        dialect = connection.dialect.name
        if dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": AUDIT_CHAIN_LOCK})
        elif dialect != "sqlite":
            # On SQLite, a writing transaction holds the write lock from its start (see
            # engine.store.database.reader), so the tail cannot change under it.
            raise AuditError(f"the audit chain cannot be serialised on {dialect}",
                             hint="Use SQLite or PostgreSQL")

    def record(self, session: Session, actor: str, action: str, target_type: str | None,
               target_id: str | None, detail: dict[str, Any] | None) -> AuditEvent:
        """Append one event in ``session``'s transaction: it is kept only if the change it
        describes is committed with it."""
        if not 0 < len(actor) <= ACTOR_MAX_LENGTH:
            raise AuditError(f"audit actor {actor!r} must be 1 to {ACTOR_MAX_LENGTH} characters")
        self.lock(session)
        tail = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
        event = AuditEvent(at=self._clock().astimezone(UTC), actor=actor, action=action,
                           target_type=target_type, target_id=target_id, detail=detail,
                           prev_hash=tail)
        event.hash = event_hash(event)
        session.add(event)
        session.flush()
        return event

    def verify(self) -> list[str]:
        """The ids of events where the chain does not hold; empty when it is intact.

        An event is reported when its own fields no longer give its hash (it was
        edited) or when it does not point at the event before it (one was deleted,
        inserted or reordered)."""
        broken: list[str] = []
        previous: str | None = None
        query = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=500)
        with Session(self._engine) as session:
            for event in session.scalars(query):
                if event.prev_hash != previous or event.hash != event_hash(event):
                    broken.append(str(event.id))
                previous = event.hash
        return broken


def event_hash(event: AuditEvent) -> str:
    """sha256 over the previous hash and the canonical JSON of the event's fields."""
    fields = {
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "detail": event.detail,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(((event.prev_hash or "") + canonical).encode("utf-8")).hexdigest()
