"""A journaled message's content, for a person reading it: the bytes as received, as
text; the HL7 v2 message parsed, or the FHIR document read; the canonical record and
the route rows fired under the rule-set version it was routed with, each row with what
its conditions saw; and what each destination was sent.

All of it is content (PHI): the caller audits every read and refuses those who may
not see it. Nothing here logs a value. The route rows alone (their ids and
destinations) are not content, and :meth:`MessageContent.rows_fired` gives them for
the message's page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.errors import SwitchboardError
from engine.hl7v2 import Message, parse
from engine.impact_preview import replayable
from engine.journal import FHIR_R4
from engine.model.outcome_event import TASK_OUTCOME
from engine.queues import NotFound
from engine.rule_versions import CompiledVersions, published_charset
from engine.rules.impact import Unreadable, evaluate
from engine.rules.route_table import FiredRow
from engine.rules.rule_set import Outcome
from engine.store.database import reader
from engine.store.models import Delivery, JournalEntry


@dataclass(frozen=True)
class StoredMessage:
    """A journal entry's bytes and what reading them takes."""

    message_id: str
    source: str
    format: str
    received_at: datetime
    raw: bytes | None
    rule_set_version: int | None
    charset: str | None  # the source's, when MSH-18 names none


@dataclass(frozen=True)
class Explained:
    """The message under the version it was routed with: its outcome, or why there is
    none (not routed yet, or it cannot be read or routed: error classes only)."""

    version: int | None
    outcome: Outcome | None = None
    failure: str | None = None

    @property
    def rows(self) -> tuple[FiredRow, ...]:
        return () if self.outcome is None else self.outcome.decision.rows


class MessageContent:
    def __init__(self, engine: Engine, versions: CompiledVersions | None = None) -> None:
        self._reads = reader(engine)
        self._versions = versions or CompiledVersions(engine)

    def stored(self, message_id: str) -> StoredMessage:
        with Session(self._reads) as session:
            entry = session.scalars(
                select(JournalEntry).where(JournalEntry.message_id == message_id)).first()
            if entry is None:
                raise NotFound(f"no message {message_id}", hint="List messages to find its id")
            version = entry.rule_set_version
            charset = None
            if version is not None:
                try:
                    charset = self._versions.get(version).rule_set.charset_of(entry.source)
                except LookupError:
                    version = None
            if charset is None:
                charset = published_charset(session, entry.source)
            return StoredMessage(entry.message_id, entry.source, entry.format or "hl7v2",
                            entry.received_at, entry.raw, version, charset)

    def explained(self, stored: StoredMessage) -> Explained:
        """The outcome under the message's own version, rows with their evidence."""
        version = stored.rule_set_version
        if version is None:
            return Explained(None, failure="it has not been routed")
        if stored.raw is None:
            return Explained(version, failure="its bytes were not kept")
        rule_set = self._versions.get(version).rule_set
        item = replayable(stored.raw, stored.format, stored.received_at,
                          stored.charset)
        if isinstance(item, Unreadable):
            return Explained(version, failure=f"it cannot be read ({item.error})")
        outcome = evaluate(rule_set, item, explain=True)
        if isinstance(outcome, str):
            return Explained(version, failure=f"it {outcome}")
        return Explained(version, outcome)

    def sent(self, message_id: str) -> list[dict[str, Any]]:
        """What each of the message's deliveries holds: the minimised payload and the
        body encoded for its destination."""
        with Session(self._reads) as session:
            rows = session.execute(
                select(Delivery.id, Delivery.destination, Delivery.status, Delivery.payload,
                       Delivery.media_type, Delivery.body)
                .join(JournalEntry, JournalEntry.id == Delivery.journal_id)
                .where(JournalEntry.message_id == message_id).order_by(Delivery.id)).all()
        return [{"id": row.id, "destination": row.destination, "status": row.status,
                 "payload": row.payload, "media_type": row.media_type, "body": row.body}
                for row in rows]

    def rows_fired(self, message_id: str) -> Explained:
        """The route rows fired (ids, destinations, checkpoints): not content."""
        return self.explained(self.stored(message_id))


def raw_text(stored: StoredMessage) -> str:
    """The bytes as received, as text: HL7 v2 in its character set, one segment a
    line; FHIR JSON as sent. Bytes that do not decode show as replacement marks."""
    raw = stored.raw or b""
    if stored.format == "hl7v2":
        try:
            text = parse(raw, stored.charset).to_text()
        except SwitchboardError:
            text = raw.decode("utf-8", "replace")
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return raw.decode("utf-8", "replace")


def parsed(stored: StoredMessage) -> Message | None:
    """The HL7 v2 message, or None when it is not one (or cannot be parsed)."""
    if stored.format != "hl7v2" or stored.raw is None:
        return None
    try:
        return parse(stored.raw, stored.charset)
    except SwitchboardError:
        return None


def document(stored: StoredMessage) -> Any:
    """A FHIR (or task outcome) message's JSON document, or None."""
    if stored.format not in (FHIR_R4, TASK_OUTCOME) or stored.raw is None:
        return None
    try:
        return json.loads(stored.raw)
    except ValueError:
        return None
