"""The journal: every inbound message is committed here before it is acknowledged.

Recording a message also decides what it is: new (the first with its keys), a
duplicate (same source, MSH-3, MSH-4 and MSH-10, same content apart from MSH-7), a
conflict (same keys, different content) or rejected (it cannot be parsed). Which copy
is first is decided by a unique index in the database, so two copies arriving at once
on two connections cannot both be processed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import SwitchboardError
from engine.hl7v2 import Message, parse
from engine.store.models import ExceptionItem, JournalEntry, StageEvent


class Kind(StrEnum):
    NEW = "received"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    OVERSIZE = "oversize"


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Received:
    """Bytes as they arrived (MLLP framing removed), from which source connection."""

    raw: bytes
    source: str
    peer: str | None = None
    received_at: datetime = field(default_factory=now_utc)


@dataclass(frozen=True)
class Journaled:
    kind: Kind
    message_id: str
    journal_id: int
    message: Message | None = None
    error: SwitchboardError | None = None
    original_message_id: str | None = None


# (source connection, error class) -> (owning role, recovery procedure)
OwnerLookup = Callable[[str, str], tuple[str, str | None]]


def default_owner(_source: str, _error_class: str) -> tuple[str, str | None]:
    return "operator", None


class Journal:
    def __init__(self, engine: Engine, owner: OwnerLookup = default_owner) -> None:
        # Results are read after the commit, so committed objects must stay readable.
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._owner = owner

    def record(self, received: Received) -> Journaled:
        """Commit ``received``; return what it turned out to be."""
        try:
            message = parse(received.raw)
        except SwitchboardError as error:
            return self._rejected(received, error)
        entry = _entry(received, message)
        entry.is_original = entry.control_id is not None
        try:
            return self._commit_new(received, message, entry)
        except IntegrityError:
            return self._repeat(received, message)

    def record_oversize(self, source: str, peer: str | None, size: int) -> Journaled:
        """An oversize frame: journaled without its content, and an exception."""
        received = Received(b"", source, peer)
        entry = JournalEntry(
            message_id=str(uuid.uuid4()), received_at=received.received_at, source=source,
            peer=peer, status=Kind.OVERSIZE, size_bytes=size, raw=None, is_original=False,
            status_reason=f"MLLP frame of at least {size} bytes exceeded the frame limit",
        )
        with self._sessions() as session, session.begin():
            session.add(entry)
            session.flush()
            self._exception(session, entry, "validation", entry.status_reason or "",
                            {"size_bytes": size, "peer": peer})
        return Journaled(Kind.OVERSIZE, entry.message_id, entry.id)

    def _commit_new(self, received: Received, message: Message, entry: JournalEntry) -> Journaled:
        with self._sessions() as session, session.begin():
            session.add(entry)
            session.flush()
            session.add(StageEvent(journal_id=entry.id, stage="journaled",
                                   at=received.received_at))
        return Journaled(Kind.NEW, entry.message_id, entry.id, message)

    def _repeat(self, received: Received, message: Message) -> Journaled:
        entry = _entry(received, message)
        with self._sessions() as session, session.begin():
            original = session.scalars(select(JournalEntry).where(
                JournalEntry.is_original.is_(True),
                JournalEntry.source == entry.source,
                JournalEntry.sending_application == entry.sending_application,
                JournalEntry.sending_facility == entry.sending_facility,
                JournalEntry.control_id == entry.control_id,
            )).one()
            same = original.content_hash == entry.content_hash
            entry.status = Kind.DUPLICATE if same else Kind.CONFLICT
            entry.status_reason = (
                f"repeats message {original.message_id}" if same else
                f"same MSH-3/MSH-4/MSH-10 as message {original.message_id}, different content"
            )
            session.add(entry)
            session.flush()
            if not same:
                self._exception(session, entry, "conflict", entry.status_reason,
                                {"original_message_id": original.message_id})
            return Journaled(Kind(entry.status), entry.message_id, entry.id, message,
                             original_message_id=original.message_id)

    def _rejected(self, received: Received, error: SwitchboardError) -> Journaled:
        entry = JournalEntry(
            message_id=str(uuid.uuid4()), received_at=received.received_at,
            source=received.source, peer=received.peer, status=Kind.REJECTED,
            status_reason=str(error), size_bytes=len(received.raw), raw=received.raw,
            is_original=False,
        )
        with self._sessions() as session, session.begin():
            session.add(entry)
            session.flush()
            self._exception(session, entry, "validation", f"unreadable message: {error}",
                            {"location": error.location})
        return Journaled(Kind.REJECTED, entry.message_id, entry.id, error=error)

    def _exception(self, session: Session, entry: JournalEntry, error_class: str,
                   summary: str, detail: dict[str, object]) -> None:
        role, procedure = self._owner(entry.source, error_class)
        session.add(ExceptionItem(
            journal_id=entry.id, connection_id=entry.source, error_class=error_class,
            owner_role=role, status="open", summary=summary, detail=detail,
            recovery_procedure=procedure, created_at=entry.received_at,
        ))


def _entry(received: Received, message: Message) -> JournalEntry:
    return JournalEntry(
        message_id=str(uuid.uuid4()), received_at=received.received_at,
        source=received.source, peer=received.peer,
        sending_application=message.get_raw("MSH-3") or "",
        sending_facility=message.get_raw("MSH-4") or "",
        control_id=message.get_raw("MSH-10") or None,
        content_hash=content_hash(message),
        message_type=message.message_type or None, event=message.trigger_event or None,
        patient_key=patient_key(message), status=Kind.NEW, size_bytes=len(received.raw),
        raw=received.raw,
    )


def content_hash(message: Message) -> str:
    """SHA-256 of the segments with MSH-7 blanked: a re-send with a new send time (or
    other line endings) hashes the same."""
    segments = message.segment_texts()
    fields = segments[0].split(message.separators.field)
    if len(fields) > 6:
        fields[6] = ""  # MSH-7: split puts MSH-2 at index 1, so MSH-n sits at n - 1
    segments[0] = message.separators.field.join(fields)
    digest = hashlib.sha256("\r".join(segments).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def patient_key(message: Message) -> str | None:
    """A stable key for the patient (first PID-3 identifier with its authority), hashed
    so the index that orders deliveries per patient holds no identifier."""
    value = message.get("PID-3.1")
    if not value:
        return None
    authority = message.get("PID-3.4") or ""
    return hashlib.sha256(f"{authority}|{value}".encode()).hexdigest()[:32]
