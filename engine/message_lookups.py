"""The lookup rows a message is found under in the message log: the keys
(engine.lookup_keys) of its control id and patient, written with its journal entry so
that a duplicate, a conflict or a stale version is found too, and of the values at the
indexed HL7 paths (engine.indexed_paths), written by the pipeline when it parses the
message, off the journal writer that every ACK waits for."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import SwitchboardError
from engine.fhir import FhirInput, read_fhir
from engine.hl7v2 import Message, parse, text_error
from engine.indexed_paths import IndexedPaths
from engine.lookup_keys import CONTROL_ID, PATIENT, lookup_key, patient_value
from engine.store.models import MessageLookup
from engine.store.prepared import Prepared

Key = tuple[str, str]
"""(kind, key)"""
_LOOKUPS: Table = MessageLookup.__table__  # type: ignore[assignment]
_COLUMNS = ("journal_id", "kind", "key", "received_at")
ROUTED = ("routed", "failed")
"""Journal statuses of HL7 v2 messages the pipeline has parsed: they have path keys."""


def identity_keys(control_id: str | None, patient: tuple[str, str] | None) -> list[Key]:
    """The keys of a control id and of a patient (identifier, authority), when given."""
    keys = []
    if control_id:
        keys.append((CONTROL_ID, lookup_key(CONTROL_ID, control_id)))
    if patient is not None:
        keys.append((PATIENT, lookup_key(PATIENT, patient_value(*patient))))
    return keys


def hl7v2_identity(message: Message) -> list[Key]:
    """MSH-10 as the journal keeps it, and the first PID-3 with its authority, as the
    journal's patient key takes it."""
    identifier = message.get("PID-3.1")
    return identity_keys(message.get_raw("MSH-10"), (
        identifier, message.get("PID-3.4") or "") if identifier else None)


def fhir_identity(fhir: FhirInput) -> list[Key]:
    """The resource's key (its Bundle identifier or ``Type/id``) in full, and its
    patient identifier."""
    return identity_keys(fhir.control_id, fhir.patient_identifier)


def rows(journal_id: int, received_at: datetime, keys: Iterable[Key]) -> list[dict[str, Any]]:
    return [{"journal_id": journal_id, "kind": kind, "key": key, "received_at": received_at}
            for kind, key in keys]


class LookupStatements:
    """The inserts, prepared once for a dialect: ``insert`` for a new journal entry,
    ``insert_new`` for a message the pipeline may parse more than once (a failed
    message sent back to it), which keeps the keys it has."""

    def __init__(self, dialect: Dialect) -> None:
        self.insert = Prepared.insert(_LOOKUPS, _COLUMNS, dialect)
        upsert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        self.insert_new = Prepared(upsert(_LOOKUPS).on_conflict_do_nothing(), dialect,
                                   _COLUMNS)


def add(connection: Connection, journal_id: int, received_at: datetime,
        keys: Iterable[Key]) -> None:
    """The keys of an entry journaled outside the journal's writer (an edited copy)."""
    found = rows(journal_id, received_at, keys)
    if found:
        connection.execute(insert(_LOOKUPS), found)


def copy_patient(connection: Connection, source_id: int, journal_id: int,
                 received_at: datetime) -> None:
    """Give ``journal_id`` the patient key of ``source_id``: a task's outcome event is
    about the patient of the message that made the task."""
    connection.execute(insert(_LOOKUPS).from_select(_COLUMNS, select(
        literal(journal_id), _LOOKUPS.c.kind, _LOOKUPS.c.key,
        literal(received_at, MessageLookup.received_at.type),
    ).where(_LOOKUPS.c.journal_id == source_id, _LOOKUPS.c.kind == PATIENT)))


def stored_keys(entry_format: str, raw: bytes | None, control_id: str | None, status: str,
                indexed: IndexedPaths) -> list[Key]:
    """The keys of a stored journal entry, as the journal and the pipeline would have
    written them: for building the rows of messages journaled before there were any,
    or again when lookup_key changes. A body that cannot be read keeps the control id
    the journal stored."""
    try:
        if entry_format == "fhir-r4":
            return fhir_identity(read_fhir(raw or b""))
        if entry_format == "hl7v2" and raw:
            message = parse(raw)
            if text_error(message) is None:
                paths = indexed.keys(message) if status in ROUTED else []
                return hl7v2_identity(message) + paths
    except SwitchboardError:
        pass
    return identity_keys(control_id, None)
