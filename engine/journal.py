"""The journal: every inbound message is committed here before it is acknowledged.

Recording a message also decides what it is: new (the first with its keys), a
duplicate (same source, MSH-3, MSH-4 and MSH-10, same content apart from MSH-7), a
conflict (same keys, different content) or rejected (it cannot be parsed). Which copy
is first is decided by a unique index in the database, so two copies arriving at once
on two connections cannot both be processed.

A FHIR resource filed under its ``Type/id`` has versions instead: other content is an
update when it is newer than the newest version journaled (meta.versionId, else
meta.lastUpdated, else arrival: engine.fhir.versions), journaled to be routed after
it; an older version is stale (journaled, flagged, not routed); the same versionId
with other content is a conflict; content already journaled is a duplicate. Which
version is the newest, engine.newest_versions keeps, by compare and set.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, Table, bindparam, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import HeaderError, SwitchboardError
from engine.fhir import FhirInput, read_fhir
from engine.fhir.versions import Comparison, DecidedBy, Order, Version, compare
from engine.hl7v2 import Message, parse, text_error
from engine.message_lookups import Key as LookupKey
from engine.message_lookups import LookupStatements, fhir_identity, hl7v2_identity, rows
from engine.newest_versions import (
    Newest,
    NewestMoved,
    Replacement,
    ResourceKey,
    first_with_content,
    read_newest,
    replace_newest,
)
from engine.store import limits
from engine.store.availability import error_name, store_unavailable
from engine.store.models import ExceptionItem, JournalEntry, StageEvent
from engine.store.prepared import Prepared

log = logging.getLogger("switchboard.journal")

# Core tables: the writer is the bottleneck, so it spends its time on inserts, not on
# the ORM.
_JOURNAL: Table = JournalEntry.__table__  # type: ignore[assignment]
_STAGES: Table = StageEvent.__table__  # type: ignore[assignment]
_EXCEPTIONS: Table = ExceptionItem.__table__  # type: ignore[assignment]


class Kind(StrEnum):
    """What a message turned out to be, which is also its journal status; but an
    update's status is ``received``: it is routed as any new message is."""

    NEW = "received"
    UPDATE = "update"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    STALE = "stale"
    REJECTED = "rejected"
    OVERSIZE = "oversize"


def now_utc() -> datetime:
    return datetime.now(UTC)


HL7V2, FHIR_R4 = "hl7v2", "fhir-r4"
# MSH-1 to MSH-12 that a message must value for Switchboard to take it: its type (to
# route it), its control id (to recognise a resend) and its version (to answer it).
REQUIRED_HEADER = (("MSH-9.1", "its message type"), ("MSH-10", "its control id"),
                   ("MSH-12", "its HL7 version"))


class WriterStopped(SwitchboardError):
    """The journal's writer stopped before committing a message: nothing was kept."""


@dataclass(frozen=True)
class Received:
    """Bytes as they arrived (MLLP framing removed), from which source connection, in
    which format (``hl7v2`` or ``fhir-r4``)."""

    raw: bytes
    source: str
    peer: str | None = None
    received_at: datetime = field(default_factory=now_utc)
    format: str = HL7V2
    # What HL7 v2 bytes are when MSH-18 names nothing; None: the source's default.
    charset: str | None = None
    # Why the source refused the bytes before reading them (a media type its catalog
    # entry does not take): journaled as rejected for that reason, unread.
    refused: SwitchboardError | None = None


@dataclass(frozen=True)
class Journaled:
    kind: Kind
    message_id: str
    journal_id: int
    message: Message | None = None
    error: SwitchboardError | None = None
    # The message this one repeats (a duplicate), clashes with (a conflict) or is older
    # than (a stale version).
    original_message_id: str | None = None
    # The version an update follows.
    previous_message_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Ownership:
    """Who owns a failure, how to recover, and whom to tell if it stays open: what
    the exception policy and the catalog say for a connection and error class."""

    role: str
    procedure: str | None = None
    escalate_after: float | None = None
    escalate_to: str | None = None
    page_technical_owner: bool = False

    def escalation(self, created_at: datetime) -> dict[str, Any]:
        """The exception item's escalation columns."""
        if self.escalate_after is None:
            return {"escalate_at": None, "escalate_to": None}
        return {"escalate_at": created_at + timedelta(seconds=self.escalate_after),
                "escalate_to": self.escalate_to}


# (source connection, error class) -> who owns it
OwnerLookup = Callable[[str, str], Ownership]
# source connection -> the character set its HL7 v2 bytes are in when MSH-18 is empty
CharsetLookup = Callable[[str], str | None]


def utf8_unless_declared(_source: str) -> str | None:
    return None


Waiter = Future[Journaled] | asyncio.Future[Journaled]


def _settle(waiters: list[Waiter], outcomes: list[Journaled | BaseException]) -> None:
    """Hand each waiter its outcome: thread futures at once, loop futures in one call
    per loop (each call wakes that loop through a socket write)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
    for waiter, outcome in zip(waiters, outcomes, strict=True):
        if isinstance(waiter, asyncio.Future):
            by_loop.setdefault(waiter.get_loop(), []).append((waiter, outcome))
        elif isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
            loop.call_soon_threadsafe(_settle_on_loop, items)


def _settle_on_loop(items: list[tuple[Any, Any]]) -> None:
    for future, outcome in items:
        if future.done():  # the caller gave up (cancelled)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def default_owner(_source: str, _error_class: str) -> Ownership:
    return Ownership("operator")


Key = tuple[str, str | None, str | None, str]
_STOP: Any = object()


class Journal:
    """Records inbound messages. Callers on many threads hand their message to one
    writer thread, which commits everything waiting in a single transaction (group
    commit): one fsync covers many ACKs, with no added wait when traffic is light,
    since a batch is simply whatever queued up during the previous commit."""

    def __init__(self, engine: Engine, owner: OwnerLookup = default_owner,
                 *, max_batch: int = 256,
                 charsets: CharsetLookup = utf8_unless_declared) -> None:
        # Results are read after the commit, so committed objects must stay readable.
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._owner = owner
        self._charsets = charsets
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Received, Waiter]] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        # A writer that has stopped taking work, though its thread may not have ended.
        self._stopped: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._statements = JournalStatements(engine.dialect)
        # The writer keeps one connection between commits: checking one out of the pool
        # (with its liveness ping) for every commit cost as much as the inserts.
        self._connection: Connection | None = None

    def record(self, received: Received) -> Journaled:
        """Commit ``received`` and return what it turned out to be; raises
        SQLAlchemyError when the store cannot commit (nothing was kept)."""
        return self.submit(received).result()

    def submit(self, received: Received) -> Future[Journaled]:
        """Queue ``received`` for the writer; the future completes after the commit."""
        future: Future[Journaled] = Future()
        self._enqueue((received, future))
        return future

    def submit_async(self, received: Received) -> asyncio.Future[Journaled]:
        """``submit`` for a caller on an event loop: its future is settled on that
        loop, with one wake-up for all of a commit's messages rather than one each."""
        future: asyncio.Future[Journaled] = asyncio.get_running_loop().create_future()
        self._enqueue((received, future))
        return future

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

    # ---- the writer ------------------------------------------------------------------

    def _enqueue(self, item: tuple[Received, Waiter]) -> None:
        # Under the writer's lock, so that nothing is queued for a writer that has
        # stopped: a writer that stops answers what it was given, and what was queued.
        with self._writer_lock:
            self._ensure_writer()
            self._queue.put(item)

    def _ensure_writer(self) -> None:
        """Start the writer, or a new one if it stopped. Call with the writer's lock."""
        writer = self._writer
        if self._running(writer):
            return
        if writer is not None:
            log.error("the journal writer had stopped; starting it again")
        self._writer = threading.Thread(target=self._write_forever, name="journal-writer",
                                        daemon=True)
        self._writer.start()

    def writer_problem(self) -> str | None:
        """For readiness: why the journal cannot commit now (its writer stopped), or
        None. A stopped writer is started again at once: a load balancer that stops
        sending on a 503 would otherwise leave it stopped for good."""
        with self._writer_lock:
            writer = self._writer
            if writer is None or self._running(writer):
                return None
            self._ensure_writer()
        return "the journal writer had stopped; it is being started again"

    def _running(self, writer: threading.Thread | None) -> bool:
        return writer is not None and writer.is_alive() and writer is not self._stopped

    def close(self) -> None:
        """Stop the writer once everything queued is committed."""
        with self._writer_lock:
            writer = self._writer
            if writer is not None and writer.is_alive():
                self._queue.put(_STOP)
        if writer is not None:
            writer.join()
            self._writer = None
        self._drop_connection()

    def _write_forever(self) -> None:
        batch: list[tuple[Received, Waiter]] = []
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        self._queue.put(_STOP)  # finish this batch, then stop
                        break
                    batch.append(item)
                self._write(batch)
                batch = []
        except BaseException as error:  # the thread ends here, and answers its senders
            log.critical("the journal writer stopped", extra={"error": type(error).__name__})
            self._answer_stranded(batch)

    def _answer_stranded(self, batch: list[tuple[Received, Waiter]]) -> None:
        """Tell everyone waiting on a writer that stopped that nothing was kept for
        them (AE: they send again), rather than leave them waiting forever."""
        with self._writer_lock:
            self._stopped = threading.current_thread()  # nothing more is queued for it
            stranded = list(batch)
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    stranded.append(item)
        waiters = [waiter for _, waiter in stranded if not waiter.done()]
        stopped = WriterStopped("the journal's writer stopped before committing",
                                hint="Send it again; nothing was kept")
        _settle(waiters, [stopped] * len(waiters))

    def _write(self, batch: list[tuple[Received, Waiter]]) -> None:
        prepared = [_prepare(received, received.charset or self._charset(received.source))
                    for received, _ in batch]
        outcomes: list[Journaled | BaseException]
        try:
            outcomes = list(self._commit_retrying(prepared))
        except Exception as error:
            if store_unavailable(error):  # every caller must know: nothing was kept
                outcomes = [error] * len(batch)
            else:
                # One message the store refuses must not cost the others their ACK.
                log.warning("a group commit failed; committing its messages one by one",
                            extra={"error": error_name(error), "messages": len(batch)})
                outcomes = [self._commit_alone(item) for item in prepared]
        _settle([waiter for _, waiter in batch], outcomes)

    def _commit_retrying(self, prepared: list[_Prepared]) -> list[Journaled]:
        for attempt in range(3):
            try:
                return self._commit(prepared)
            except (IntegrityError, NewestMoved):
                # Another process committed the same key since we looked: look again.
                self._drop_connection()
                if attempt == 2:
                    raise
            except DBAPIError as error:
                self._drop_connection()  # the next try starts from the pool's check
                if not (error.connection_invalidated and attempt == 0):
                    raise
                # The server closed the idle connection: one more try.
            except Exception:
                self._drop_connection()
                raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _commit_alone(self, item: _Prepared) -> Journaled | BaseException:
        """Commit one message; if the store refuses it, journal it as rejected with only
        what cannot be refused (its bytes, source and times), and say so."""
        try:
            return self._commit_retrying([item])[0]
        except Exception as error:
            if store_unavailable(error):
                return error
            log.warning("the store refused a message; it is journaled as rejected",
                        extra={"error": error_name(error)})
            refused = _Prepared(dataclasses.replace(item.received, peer=None), None,
                                SwitchboardError(
                                    f"Switchboard could not store this message "
                                    f"({error_name(error)})",
                                    hint="An operator can see it in the exception queue"))
        try:
            return self._commit_retrying([refused])[0]
        except Exception as error:
            return error

    def _charset(self, source: str) -> str | None:
        try:
            return self._charsets(source)
        except Exception:  # the rules cannot be read: the store is down, the commit says so
            log.warning("no character set for a source; taking UTF-8",
                        extra={"source": source})
            return None

    def _writer_connection(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # it may be the thing that broke
                connection.close()

    def _commit(self, prepared: list[_Prepared]) -> list[Journaled]:
        """One transaction for the whole batch, in statements prepared once and run on
        the driver's cursor: the writer is the bottleneck, so it spends its time on
        inserts, not on building statements."""
        plans = [_Plan.of(item) for item in prepared]  # before the transaction begins
        statements = self._statements
        connection = self._writer_connection()
        with connection.begin():
            known = statements.originals(connection, {
                p.key for p in plans if p.key is not None and p.resource is None})
            versions = _Versions(connection, read_newest(connection, {
                p.resource for p in plans if p.resource is not None}))
            for plan in plans:
                if plan.resource is not None:
                    versions.classify(plan)
                else:
                    self._classify(plan, known)
            ids = statements.insert_journal(connection, [plan.row for plan in plans])
            replace_newest(connection, versions.replacements())
            statements.lookups.insert.execute_many(connection, [
                row for plan, journal_id in zip(plans, ids, strict=True)
                for row in rows(journal_id, plan.row["received_at"], plan.lookups)])
            statements.stages.execute_many(connection, [
                {"journal_id": journal_id, "stage": "journaled",
                 "at": plan.row["received_at"]}
                for plan, journal_id in zip(plans, ids, strict=True)
                if plan.kind in (Kind.NEW, Kind.UPDATE)])
            statements.exceptions.execute_many(connection, [
                self._exception_row(plan, journal_id)
                for plan, journal_id in zip(plans, ids, strict=True) if plan.problem])
        return [plan.result(journal_id) for plan, journal_id in zip(plans, ids, strict=True)]

    @staticmethod
    def _classify(plan: _Plan, known: dict[Key, tuple[str, str]]) -> None:
        """Decide what ``plan`` is; an original earlier in the same batch counts."""
        if plan.error is not None:
            plan.reject()
        elif plan.key is not None and plan.key in known:
            plan.repeat(*known[plan.key])
        else:
            plan.row["is_original"] = plan.key is not None
            if plan.key is not None:
                known[plan.key] = (plan.row["message_id"], plan.row["content_hash"])

    def _exception_row(self, plan: _Plan, journal_id: int) -> dict[str, Any]:
        assert plan.problem is not None
        error_class, summary, detail = plan.problem
        owner = self._owner(plan.row["source"], error_class)
        return {
            "journal_id": journal_id, "connection_id": plan.row["source"],
            "error_class": error_class, "owner_role": owner.role, "status": "open",
            "summary": summary, "detail": _paging(detail, owner),
            "recovery_procedure": owner.procedure, "created_at": plan.row["received_at"],
            **owner.escalation(plan.row["received_at"]),
        }

    def _exception(self, session: Session, entry: JournalEntry, error_class: str,
                   summary: str, detail: dict[str, object]) -> None:
        owner = self._owner(entry.source, error_class)
        session.add(ExceptionItem(
            journal_id=entry.id, connection_id=entry.source, error_class=error_class,
            owner_role=owner.role, status="open", summary=summary,
            detail=_paging(detail, owner), recovery_procedure=owner.procedure,
            created_at=entry.received_at, **owner.escalation(entry.received_at),
        ))


def _paging(detail: Any, owner: Ownership) -> Any:
    """``detail`` with the policy's wish to page the technical owner, for escalation."""
    if not owner.page_technical_owner:
        return detail
    return {**(detail or {}), "page_technical_owner": True}


@dataclass(frozen=True)
class _Prepared:
    """A received message parsed outside the transaction, so the writer's transaction
    holds the database only for the inserts."""

    received: Received
    message: Message | None
    error: SwitchboardError | None
    fhir: FhirInput | None = None


_ORIGINAL_COLUMNS = (
    _JOURNAL.c.source, _JOURNAL.c.sending_application, _JOURNAL.c.sending_facility,
    _JOURNAL.c.control_id, _JOURNAL.c.message_id, _JOURNAL.c.content_hash,
)
_JOURNAL_COLUMNS = [column.name for column in _JOURNAL.c if column.name != "id"]
_EXCEPTION_COLUMNS = ("journal_id", "connection_id", "error_class", "owner_role", "status",
                      "summary", "detail", "recovery_procedure", "created_at",
                      "escalate_at", "escalate_to")
ORIGINALS_PER_QUERY = 500


class JournalStatements:
    """The writer's statements, prepared once for the store's dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self.stages = Prepared.insert(_STAGES, ("journal_id", "stage", "at"), dialect)
        self.exceptions = Prepared.insert(_EXCEPTIONS, _EXCEPTION_COLUMNS, dialect)
        self.lookups = LookupStatements(dialect)
        # SQLite reports each new id as lastrowid; PostgreSQL returns them all from one
        # multi-row INSERT ... RETURNING, which Core builds.
        self._journal = (Prepared.insert(_JOURNAL, _JOURNAL_COLUMNS, dialect)
                         if dialect.name == "sqlite" else None)
        self._originals: dict[int, Prepared] = {}

    def insert_journal(self, connection: Connection, rows: list[dict[str, Any]]) -> list[int]:
        if self._journal is None:
            return list(connection.execute(
                _JOURNAL.insert().returning(_JOURNAL.c.id, sort_by_parameter_order=True),
                rows).scalars())
        return [self._journal.execute(connection, row).lastrowid for row in rows]

    def originals(self, connection: Connection, keys: set[Key]) -> dict[Key, tuple[str, str]]:
        """(message id, content hash) of the committed original for each key."""
        found: dict[Key, tuple[str, str]] = {}
        for prepared, parameters in self.originals_queries(keys):
            cursor = prepared.execute(connection, parameters)
            for source, app, facility, control_id, message_id, digest in cursor.fetchall():
                found[(source, app, facility, control_id)] = (message_id, digest or "")
            cursor.close()
        return found

    def originals_queries(self, keys: set[Key]) -> list[tuple[Prepared, dict[str, Any]]]:
        """One query per (source, MSH-3, MSH-4), so that each walks the dedupe index
        from its leading columns: a lookup by control id alone would scan the whole
        journal on every commit, slower as the journal grows."""
        groups: dict[tuple[str, str | None, str | None], list[str]] = {}
        for source, app, facility, control_id in keys:
            groups.setdefault((source, app, facility), []).append(control_id)
        queries = []
        for (source, app, facility), control_ids in sorted(groups.items(), key=str):
            ordered = sorted(control_ids)
            for start in range(0, len(ordered), ORIGINALS_PER_QUERY):
                chunk = ordered[start:start + ORIGINALS_PER_QUERY]
                parameters: dict[str, Any] = {f"control_id_{n}": control_id
                                              for n, control_id in enumerate(chunk)}
                parameters.update(source=source, application=app, facility=facility)
                queries.append((self._originals_for(len(chunk)), parameters))
        return queries

    def _originals_for(self, count: int) -> Prepared:
        """The lookup for ``count`` control ids, prepared the first time it is needed."""
        prepared = self._originals.get(count)
        if prepared is None:
            statement = select(*_ORIGINAL_COLUMNS).where(
                _JOURNAL.c.is_original.is_(True), _JOURNAL.c.source == bindparam("source"),
                _JOURNAL.c.sending_application == bindparam("application"),
                _JOURNAL.c.sending_facility == bindparam("facility"),
                _JOURNAL.c.control_id.in_(
                    [bindparam(f"control_id_{n}") for n in range(count)]),
            )
            prepared = self._originals[count] = Prepared(statement, self._dialect)
        return prepared


def _prepare(received: Received, charset: str | None) -> _Prepared:
    """``received`` read (HL7 v2 in ``charset`` when MSH-18 names none), or why it
    cannot be taken: never an exception, so that one message cannot cost the others
    in its group commit their ACK."""
    if received.refused is not None:
        return _Prepared(received, None, received.refused)
    try:
        if received.format == FHIR_R4:
            return _Prepared(received, None, None, read_fhir(received.raw))
        message = parse(received.raw, charset)
        problem = text_error(message) or _header_problem(message)
        if problem is not None:
            return _Prepared(received, None, problem)
        return _Prepared(received, message, None)
    except SwitchboardError as error:
        return _Prepared(received, None, error)
    except Exception as error:  # a defect: this message fails alone, and visibly
        log.exception("reading a message failed", extra={"source": received.source})
        return _Prepared(received, None, SwitchboardError(
            f"Switchboard could not read this message (internal error: "
            f"{type(error).__name__})", hint="An operator can see it in the exception queue"))


def _header_problem(message: Message) -> HeaderError | None:
    """Why the header cannot be taken: a required field is empty, or a value the
    journal indexes is longer than its column (one limit for both stores)."""
    for path, what in REQUIRED_HEADER:
        if not message.get(path):
            return HeaderError(f"is empty, and Switchboard needs {what}", ack_code=101,
                               **_header_location(path))
    values = {"MSH-3": message.get_raw("MSH-3"), "MSH-4": message.get_raw("MSH-4"),
              "MSH-9.1": message.message_type, "MSH-9.2": message.trigger_event,
              "MSH-10": message.get_raw("MSH-10")}
    for limit in limits.HL7V2_HEADER:
        value = values[limit.path] or ""
        if len(value) > limit.length:
            return HeaderError(
                f"is {len(value)} characters long; Switchboard keeps at most {limit.length}",
                ack_code=104, **_header_location(limit.path))
    return None


def _header_location(path: str) -> dict[str, Any]:
    field, _, component = path.removeprefix("MSH-").partition(".")
    return {"segment": "MSH", "segment_number": 1, "occurrence": 1, "field": int(field),
            "component": int(component) if component else None}


@dataclass
class _Plan:
    """One journal row being decided: new, an update, a duplicate, a conflict, a stale
    version or rejected."""

    prepared: _Prepared
    row: dict[str, Any]
    key: Key | None
    kind: Kind = Kind.NEW
    original_message_id: str | None = None
    previous_message_id: str | None = None
    problem: tuple[str, str, dict[str, object]] | None = None
    # What the message log finds it by: its control id and patient (engine.message_lookups).
    lookups: list[LookupKey] = field(default_factory=list)

    @property
    def resource(self) -> ResourceKey | None:
        """(source, ``Type/id``) of a FHIR resource filed under it: it has versions."""
        fhir = self.prepared.fhir
        if fhir is None or not fhir.versioned or self.row["control_id"] is None:
            return None
        return self.row["source"], self.row["control_id"]

    @property
    def version(self) -> Version:
        fhir = self.prepared.fhir
        return fhir.version if fhir is not None else Version()

    @property
    def newest(self) -> Newest:
        """This message as the newest version of its resource."""
        return Newest(self.row["message_id"], self.row["content_hash"], self.version)

    @property
    def error(self) -> SwitchboardError | None:
        return self.prepared.error

    @classmethod
    def of(cls, prepared: _Prepared) -> _Plan:
        received, message = prepared.received, prepared.message
        row: dict[str, Any] = {
            "message_id": str(uuid.uuid4()), "received_at": received.received_at,
            "source": received.source, "peer": received.peer, "status": Kind.NEW.value,
            "size_bytes": len(received.raw), "raw": received.raw, "is_original": False,
            "format": received.format,
            "sending_application": None, "sending_facility": None, "control_id": None,
            "content_hash": None, "message_type": None, "event": None, "patient_key": None,
            "status_reason": None, "rule_set_version": None,
        }
        if prepared.fhir is not None:
            # FHIR REST names no sending application: the resource's own ids are the key.
            fhir = prepared.fhir
            row.update(sending_application="", sending_facility="",
                       control_id=_fits(fhir.control_id), content_hash=fhir.content_hash,
                       message_type=fhir.resource_type, patient_key=fhir.order_key)
        if message is None:
            key = None if row["control_id"] is None else (
                row["source"], "", "", row["control_id"])
            lookups = fhir_identity(prepared.fhir) if prepared.fhir is not None else []
            return cls(prepared, row, key, lookups=lookups)
        row.update(
            sending_application=message.get_raw("MSH-3") or "",
            sending_facility=message.get_raw("MSH-4") or "",
            control_id=message.get_raw("MSH-10") or None,
            content_hash=content_hash(message),
            message_type=message.message_type or None, event=message.trigger_event or None,
            patient_key=patient_key(message),
        )
        key = None if row["control_id"] is None else (  # no MSH-10: nothing to match on
            row["source"], row["sending_application"], row["sending_facility"],
            row["control_id"])
        return cls(prepared, row, key, lookups=hl7v2_identity(message))

    def reject(self) -> None:
        error = self.prepared.error
        assert error is not None
        self.kind = Kind.REJECTED
        self.row.update(status=Kind.REJECTED.value, status_reason=str(error))
        self.problem = ("validation", f"unreadable message: {error}",
                        {"location": error.location})

    def repeat(self, original_id: str, original_hash: str) -> None:
        same = original_hash == self.row["content_hash"]
        if same:
            self.duplicate(original_id)
            return
        keys = ("same Bundle.identifier" if self.prepared.fhir is not None
                else "same MSH-3/MSH-4/MSH-10")
        self.flag(Kind.CONFLICT, original_id,
                  f"{keys} as message {original_id}, different content", {})

    def duplicate(self, original_id: str) -> None:
        self.kind, self.original_message_id = Kind.DUPLICATE, original_id
        self.row.update(status=self.kind.value, status_reason=f"repeats message {original_id}")

    def flag(self, kind: Kind, original_id: str, reason: str,
             detail: dict[str, object]) -> None:
        """Journaled, not routed, and an exception item someone owns."""
        self.kind, self.original_message_id = kind, original_id
        self.row.update(status=kind.value, status_reason=reason)
        self.problem = ("conflict", reason, {"original_message_id": original_id, **detail})

    def follow(self, newest: Newest, comparison: Comparison) -> None:
        """A newer version than ``newest``: routed after it, as any new message is."""
        self.kind, self.previous_message_id = Kind.UPDATE, newest.message_id
        name = self._resource_name
        if comparison.decided_by == DecidedBy.ARRIVAL:
            why = "received after it; no versionId or lastUpdated orders them"
        else:
            why = (f"{self.version.named(comparison.decided_by)} after "
                   f"{newest.version.named(comparison.decided_by)}")
        self.row["status_reason"] = f"updates {name} of message {newest.message_id} ({why})"

    def stale(self, newest: Newest, comparison: Comparison) -> None:
        ours = self.version.named(comparison.decided_by)
        theirs = newest.version.named(comparison.decided_by)
        self.flag(Kind.STALE, newest.message_id,
                  f"{self._resource_name}: {ours} is older than {theirs} of message "
                  f"{newest.message_id}, received before it; journaled, not routed over "
                  "the newer version", self._versions(ours, theirs))

    def same_version(self, newest: Newest, comparison: Comparison) -> None:
        ours = self.version.named(comparison.decided_by)
        self.flag(Kind.CONFLICT, newest.message_id,
                  f"{self._resource_name}: {ours} was already received as message "
                  f"{newest.message_id}, with other content; not routed",
                  self._versions(ours, newest.version.named(comparison.decided_by)))

    @property
    def _resource_name(self) -> str:
        fhir = self.prepared.fhir
        return str(fhir.control_id if fhir is not None else self.row["control_id"])

    def _versions(self, ours: str, theirs: str) -> dict[str, object]:
        return {"resource": self._resource_name, "version": ours, "newest_version": theirs}

    def result(self, journal_id: int) -> Journaled:
        return Journaled(self.kind, self.row["message_id"], journal_id, self.prepared.message,
                         self.prepared.error, self.original_message_id,
                         self.previous_message_id, self.row["status_reason"])


class _Versions:
    """The versions of FHIR resources in one batch, decided against the newest stored
    for each (``newest``, as read in the writer's transaction) and against the earlier
    messages of the batch."""

    def __init__(self, connection: Connection, newest: dict[ResourceKey, Newest]) -> None:
        self._connection = connection
        self._read_as = {key: found.message_id for key, found in newest.items()}
        self._newest = dict(newest)
        self._changed: set[ResourceKey] = set()
        self._content: dict[tuple[ResourceKey, str], str] = {}

    def classify(self, plan: _Plan) -> None:
        resource = plan.resource
        assert resource is not None
        content = plan.row["content_hash"]
        newest = self._newest.get(resource)
        if newest is None:
            self._take(resource, plan)
        elif newest.content_hash == content:
            plan.duplicate(newest.message_id)
        elif (comparison := compare(plan.version, newest.version)).order == Order.NEWER:
            plan.follow(newest, comparison)
            self._take(resource, plan)
        elif earlier := (self._content.get((resource, content))
                         or first_with_content(self._connection, resource, content)):
            plan.duplicate(earlier)  # an older version sent again
        elif comparison.order == Order.SAME:
            plan.same_version(newest, comparison)
        else:
            plan.stale(newest, comparison)
        if plan.kind != Kind.DUPLICATE:
            self._content.setdefault((resource, content), plan.row["message_id"])

    def _take(self, resource: ResourceKey, plan: _Plan) -> None:
        self._newest[resource] = plan.newest
        self._changed.add(resource)

    def replacements(self) -> list[Replacement]:
        return [Replacement(key, self._read_as.get(key), self._newest[key])
                for key in self._changed]


def entry_fields(received: Received) -> tuple[dict[str, Any], SwitchboardError | None]:
    """The journal row ``received`` would make (status received, not an original), with
    why it cannot be read if it cannot: for a message entered by hand, such as an edit
    that replaces one, which must not take the original's place in the dedupe index."""
    row, error, _ = entry_fields_and_lookups(received)
    return row, error


def entry_fields_and_lookups(received: Received) -> tuple[
        dict[str, Any], SwitchboardError | None, list[LookupKey]]:
    """``entry_fields``, and the lookup keys the message log finds the entry by."""
    plan = _Plan.of(_prepare(received, received.charset))
    return plan.row, plan.error, plan.lookups


def _fits(control_id: str | None) -> str | None:
    """A key that fits its column: a FHIR identifier can be longer than any MSH-10."""
    if control_id is None or len(control_id) <= limits.CONTROL_ID:
        return control_id
    return "sha256:" + hashlib.sha256(control_id.encode()).hexdigest()


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
    return patient_key_of(value, message.get("PID-3.4") or "")


def patient_key_of(identifier: str, authority: str = "") -> str:
    """The patient key of ``identifier`` issued by ``authority``: how a search by
    patient finds the journal's rows without the index holding the identifier."""
    return hashlib.sha256(f"{authority}|{identifier}".encode()).hexdigest()[:32]
