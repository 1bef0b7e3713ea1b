"""A task outcome event, pure: what a person decided on a task (completed, approved or
rejected; the state they chose and why; their role), as the journal keeps it and as
the routes see it.

The journal keeps the event as JSON (format ``task-outcome``) holding the originating
message's own bytes, so routing it, replaying it in an impact preview, or routing it
again after a failure needs nothing but its row. Its canonical record is the
originating message's record, converted by the rules that route the event, under the
event's envelope (type ``TASK``, event the outcome) with a ``task_outcome`` section:
the shape ``rules/schema/canonical.schema.json`` documents.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from engine.errors import SwitchboardError
from engine.fhir import read_fhir, to_canonical
from engine.hl7v2 import Message, parse, text_error
from engine.model.mapping import TOP_LEVEL_LISTS, TOP_LEVEL_OBJECTS, Conversion, Mapper

TASK_OUTCOME = "task-outcome"
"""The journal format of an outcome event, and its record's ``message.source_format``."""
EVENT_TYPE = "TASK"
OUTCOMES = ("completed", "approved", "rejected")
_FHIR_R4 = "fhir-r4"  # the journal's name for FHIR R4 JSON (engine.journal.FHIR_R4)
# The originating envelope's fields an outcome names: which message the task was for.
_ORIGIN_FIELDS = ("source_format", "type", "event", "control_id", "sending_application",
                  "sending_facility")

# source connection -> the character set its HL7 v2 bytes are in when MSH-18 names none
Charsets = Callable[[str], str | None]


class OutcomeEventError(SwitchboardError):
    """A journal row of format task-outcome that is not an outcome event."""


@dataclass(frozen=True)
class Origin:
    """The message a task came from, as journaled: its bytes and how to read them."""

    message_id: str
    source: str
    format: str
    received_at: datetime
    raw: bytes


@dataclass(frozen=True)
class OutcomeEvent:
    task_id: int
    queue: str
    kind: str
    mode: str
    row_id: str | None
    outcome: str
    decided_at: datetime
    state: str | None = None
    reason: str | None = None
    decided_by_role: str | None = None
    origin: Origin | None = None

    @property
    def control_id(self) -> str:
        """The event's key in the journal: a task is decided once."""
        return f"task-{self.task_id}"

    def to_bytes(self) -> bytes:
        document = asdict(self)
        document["decided_at"] = self.decided_at.isoformat()
        if self.origin is not None:
            document["origin"].update(received_at=self.origin.received_at.isoformat(),
                                      raw=base64.b64encode(self.origin.raw).decode("ascii"))
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def read(cls, raw: bytes) -> OutcomeEvent:
        """The event ``raw`` holds; OutcomeEventError, quoting nothing, if none."""
        try:
            document = json.loads(raw)
            origin = document.pop("origin")
            if origin is not None:
                origin = Origin(**{
                    **origin, "received_at": datetime.fromisoformat(origin["received_at"]),
                    "raw": base64.b64decode(origin["raw"], validate=True)})
            event = cls(**{**document, "origin": origin,
                           "decided_at": datetime.fromisoformat(document["decided_at"])})
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
            raise OutcomeEventError("the journal row is not a task outcome event",
                                    hint="Only the work queue journals outcome events"
                                    ) from None
        if not isinstance(event.task_id, int) or event.outcome not in OUTCOMES:
            raise OutcomeEventError("the journal row is not a task outcome event")
        return event

    def conversion(self, mapper: Mapper, charsets: Charsets) -> tuple[Conversion, Message | None]:
        """The event's canonical record, its originating message converted by ``mapper``
        (HL7 v2 in its source's character set when MSH-18 names none), and that message
        when it is HL7 v2, for route conditions on raw HL7 paths."""
        origin = self.origin
        if origin is None:
            return Conversion(event_record(None, self), (), True, (TASK_OUTCOME,)), None
        if origin.format == _FHIR_R4:
            record = to_canonical(read_fhir(origin.raw), received_at=origin.received_at)
            return Conversion(event_record(record, self), (), True, (_FHIR_R4,)), None
        if origin.format == TASK_OUTCOME:  # a task about a decision: its record, wrapped
            inner, message = OutcomeEvent.read(origin.raw).conversion(mapper, charsets)
            return _wrapped(inner, self), message
        message = parse(origin.raw, charsets(origin.source))
        unreadable = text_error(message)
        if unreadable is not None:
            raise unreadable
        return _wrapped(mapper.convert(message), self), message


def _wrapped(conversion: Conversion, event: OutcomeEvent) -> Conversion:
    return Conversion(event_record(conversion.record, event), conversion.issues,
                      conversion.covered, conversion.mappings)


def event_record(origin: Mapping[str, Any] | None, event: OutcomeEvent) -> dict[str, Any]:
    """The canonical record of ``event`` about a message whose record is ``origin``
    (None: the task came from no message). ``origin`` is not changed."""
    record: dict[str, Any] = {key: {} for key in TOP_LEVEL_OBJECTS}
    record.update({key: [] for key in TOP_LEVEL_LISTS})
    record.update(origin or {})
    decided_at = event.decided_at.isoformat()
    record["message"] = {"source_format": TASK_OUTCOME, "type": EVENT_TYPE,
                         "event": event.outcome, "control_id": event.control_id,
                         "sent_at": decided_at}
    section = _present({
        "task_id": event.task_id, "queue": event.queue, "kind": event.kind,
        "mode": event.mode, "row_id": event.row_id, "outcome": event.outcome,
        "state": event.state, "reason": event.reason,
        "decided_by_role": event.decided_by_role, "decided_at": decided_at})
    if event.origin is not None:
        envelope = (origin or {}).get("message") or {}
        section["origin"] = _present({"message_id": event.origin.message_id,
                                      **{name: envelope.get(name) for name in _ORIGIN_FIELDS}})
    record["task_outcome"] = section
    return record


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the empty ones: the canonical record leaves them out."""
    return {key: value for key, value in values.items() if value not in (None, "")}
