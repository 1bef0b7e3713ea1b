"""The message log: journaled messages with their stage timeline, deliveries, tasks
and exception items, as the REST API, ``switchboard messages`` and the console show
them, and the one search over them. Control ids, patients and path values are searched
by their lookup keys (engine.lookup_keys, engine.message_lookups). Views carry
identifiers, statuses and PHI-free reasons, never message content."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, and_, asc, desc, exists, func, select
from sqlalchemy.orm import Session, aliased, defer

from engine.backlog import WAITING_DELIVERY
from engine.chain_holds import held_by_dead_letter
from engine.exception_queue import exception_summary
from engine.indexed_paths import IndexedPaths
from engine.lookup_keys import CONTROL_ID, PATIENT, lookup_key, patient_value
from engine.queues import Invalid, NotFound, Page, aware_moment, check_page, iso
from engine.store.database import reader
from engine.store.limits import MAX_ID
from engine.store.models import (
    Delivery,
    ExceptionItem,
    JournalEntry,
    MessageLookup,
    StageEvent,
    Task,
)

FILTERS: Mapping[str, Any] = {
    "source": JournalEntry.source, "status": JournalEntry.status,
    "type": JournalEntry.message_type, "event": JournalEntry.event,
}
"""Filters that match a journal column exactly; the others are read apart."""
PARAMETERS: Mapping[str, str] = {
    "control_id": "MSH-10 (a FHIR resource's Bundle identifier or Type/id), exactly",
    "patient": "the patient's identifier (PID-3.1, or a FHIR identifier's value)",
    "patient_authority": "with patient: its assigning authority (PID-3.4, or the "
                         "identifier's system); empty when the message names none",
    "source": "the source connection", "status": "the journal status",
    "type": "the message type (MSH-9.1, or a FHIR resource type)",
    "event": "the trigger event (MSH-9.2)",
    "destination": "messages with a delivery to this destination",
    "delivery_status": "messages with a delivery in this status (to destination, when "
                       "given); failed means dead or failed: the outbox gave up on it",
    "path": "an indexed HL7 path (by default OBX-3.1, PV1-3.1 or MSH-4); with value",
    "value": "with path: the value held there, exactly",
    "since": "received at or after this ISO 8601 time with a UTC offset",
    "until": "received before this ISO 8601 time with a UTC offset",
    "sort": "received_at (oldest first) or -received_at (newest first, the default)",
}
"""Every parameter of a search, as the REST API, the command line and a saved search
take it; the API document describes them from here."""
DELIVERY_STATUSES: Mapping[str, tuple[str, ...]] = {
    "held": ("held",), "pending": ("pending",), "retrying": ("retrying",),
    "in_flight": ("in_flight",), "delivered": ("delivered",), "dead": ("dead",),
    "failed": ("dead", "failed"), "cancelled": ("cancelled",),
}
"""A delivery status searched for, and the outbox statuses it covers: the dashboard
counts dead letters and deliveries that could not be encoded as failed."""
SORTS = ("-received_at", "received_at")
TOTAL_COUNTED = 10_000
"""Matches counted past the page asked for: a page's total stops there (``total_exact``
false) rather than count every message of a busy code."""


@dataclass(frozen=True)
class Search:
    """A message-log query, checked: lookup keys (the first drives the query), journal
    columns, a destination, a time range and an order."""

    keys: list[tuple[str, str]] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    destination: str | None = None
    delivery_statuses: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    newest_first: bool = True

    @classmethod
    def read(cls, query: Mapping[str, Any], indexed: IndexedPaths) -> Search:
        """``query``'s parameters (see PARAMETERS; empty ones are left out); Invalid
        says which one is wrong and what to send instead."""
        given = _given(query)
        keys = []
        if "control_id" in given:
            keys.append((CONTROL_ID, lookup_key(CONTROL_ID, given["control_id"])))
        if "patient" in given:
            value = patient_value(given["patient"], given.get("patient_authority", ""))
            keys.append((PATIENT, lookup_key(PATIENT, value)))
        elif "patient_authority" in given:
            raise Invalid("patient_authority needs patient",
                          hint="Send the identifier as patient, with its authority")
        if "path" in given or "value" in given:
            keys.append(_path_key(given, indexed))
        sort = given.get("sort", SORTS[0])
        if sort not in SORTS:
            raise Invalid(f"unknown sort {sort!r}", hint="Sort by: " + ", ".join(SORTS))
        delivery_status = given.get("delivery_status")
        if delivery_status is not None and delivery_status not in DELIVERY_STATUSES:
            raise Invalid(f"unknown delivery_status {delivery_status!r}",
                          hint="Search one of: " + ", ".join(DELIVERY_STATUSES))
        return cls(keys, {name: value for name, value in given.items() if name in FILTERS},
                   given.get("destination"),
                   None if delivery_status is None else DELIVERY_STATUSES[delivery_status],
                   aware_moment("since", given["since"]) if "since" in given else None,
                   aware_moment("until", given["until"]) if "until" in given else None,
                   sort == SORTS[0])

    def statement(self, *, counting: bool = False) -> Select[Any]:
        """The journal entries that match, in order; ``counting``: only their ids, read
        from the lookup index alone when no journal column is filtered."""
        if self.keys:
            (kind, key), *others = self.keys
            driver = aliased(MessageLookup)
            received, ident = driver.received_at, driver.journal_id
            query = select(ident if counting else JournalEntry).select_from(driver).where(
                driver.kind == kind, driver.key == key)
            if not counting or self.columns:
                query = query.join(JournalEntry, JournalEntry.id == ident)
        else:
            received, ident = JournalEntry.received_at, JournalEntry.id
            query = select(ident if counting else JournalEntry)
            others = []
        for kind, key in others:
            other = aliased(MessageLookup)
            query = query.where(exists().where(
                other.journal_id == ident, other.kind == kind, other.key == key))
        if self.since is not None:
            query = query.where(received >= self.since)
        if self.until is not None:
            query = query.where(received < self.until)
        for name, value in self.columns.items():
            query = query.where(FILTERS[name] == value)
        if self.destination is not None or self.delivery_statuses is not None:
            query = query.where(self._delivery(ident))
        if counting:
            return query
        order = desc if self.newest_first else asc
        return query.order_by(order(received), order(ident))


    def _delivery(self, ident: Any) -> Any:
        """A delivery of the message to the destination, in one of the statuses."""
        found = exists().where(Delivery.journal_id == ident)
        if self.destination is not None:
            found = found.where(Delivery.destination == self.destination)
        if self.delivery_statuses is not None:
            found = found.where(Delivery.status.in_(self.delivery_statuses))
        return found


def checked_query(query: Mapping[str, Any], indexed: IndexedPaths) -> dict[str, str]:
    """``query`` as a saved search keeps it: only the parameters given, each checked."""
    Search.read(query, indexed)
    return _given(query)


class MessageLog:
    def __init__(self, engine: Engine, indexed: IndexedPaths | None = None) -> None:
        self._reads = reader(engine)
        self.indexed = indexed or IndexedPaths.configured()

    def list(self, query: Mapping[str, Any], page: int = 1, per_page: int = 50) -> Page:
        """Messages matching every parameter of ``query`` (see PARAMETERS), newest
        first unless it sorts them otherwise. The total counts up to TOTAL_COUNTED
        matches past the page."""
        check_page(page, per_page)
        search = Search.read(query, self.indexed)
        offset = (page - 1) * per_page
        with Session(self._reads) as session:
            # The body stays in the store: a listing shows none of it.
            listed = search.statement().options(defer(JournalEntry.raw))
            rows = session.scalars(listed.limit(per_page).offset(offset)).all()
            if len(rows) < per_page and (rows or page == 1):
                total, exact = offset + len(rows), True  # this page is the last
            else:
                # Capped so that the last page the API allows cannot overflow a BIGINT.
                limit = min(offset + per_page + TOTAL_COUNTED, MAX_ID - 1)
                counted = search.statement(counting=True).limit(limit + 1).subquery()
                total = session.scalar(select(func.count()).select_from(counted)) or 0
                exact = total <= limit
                total = min(total, limit)
            standing = _deliveries_of(session, [row.id for row in rows])
            return Page([{**message_summary(row), "deliveries": standing.get(row.id, [])}
                         for row in rows], page, per_page, total, exact)

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


def _deliveries_of(session: Session,
                   journal_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Where each listed message's deliveries stand, by destination, and whether one
    waiting waits behind a dead letter of its patient (strict ordering): one look-up by
    the journal index for the page, so a listing says which messages did not arrive."""
    standing: dict[int, list[dict[str, Any]]] = {}
    if not journal_ids:
        return standing
    waiting = Delivery.status.in_(sorted(WAITING_DELIVERY))
    for journal_id, destination, status, behind in session.execute(
            select(Delivery.journal_id, Delivery.destination, Delivery.status,
                   and_(waiting, held_by_dead_letter(Delivery.__table__)))
            .where(Delivery.journal_id.in_(journal_ids)).order_by(Delivery.id)):
        standing.setdefault(journal_id, []).append(
            {"destination": destination, "status": status,
             "behind_failure": bool(behind)})
    return standing


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
        "id": delivery.id, "destination": delivery.destination, "status": delivery.status,
        "held_by_row": delivery.held_by_row, "attempts": delivery.attempts,
        "error_class": delivery.error_class, "last_error": delivery.last_error,
        "next_attempt_at": iso(delivery.next_attempt_at)
        if delivery.status == "retrying" else None,
        "delivered_at": iso(delivery.delivered_at),
        "idempotency_key": delivery.idempotency_key,
    }


def _given(query: Mapping[str, Any]) -> dict[str, str]:
    """The parameters of ``query`` that hold a value; Invalid for an unknown one."""
    given = {}
    for name, value in query.items():
        if name not in PARAMETERS:
            raise Invalid(f"unknown filter {name!r}",
                          hint="Filter by: " + ", ".join(PARAMETERS))
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise Invalid(f"{name} must be text", hint=f"Send {name} as a string")
        given[name] = value
    return given


def _path_key(given: Mapping[str, str], indexed: IndexedPaths) -> tuple[str, str]:
    path, value = given.get("path"), given.get("value")
    if path is None or value is None:
        raise Invalid("path and value go together",
                      hint="Send both, e.g. path=OBX-3.1&value=8867-4")
    kind = indexed.kind_of(path)
    if kind is None:
        names = ", ".join(indexed.names) or "none"
        raise Invalid(f"{path!r} is not an indexed path",
                      hint=f"Search one of the indexed paths: {names}")
    return kind, lookup_key(kind, value)


def _children(session: Session, model: Any, journal_id: int) -> list[Any]:
    return list(session.scalars(
        select(model).where(model.journal_id == journal_id).order_by(model.id)))
