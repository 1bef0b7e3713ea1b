"""The pipeline: journal -> parse -> normalise -> route -> minimise -> encode ->
delivery intents, run by workers apart from the listeners so a slow stage never slows
ingest. Messages are taken in batches: the pure stages run for each message, then one
transaction claims the batch and records every stage with its time and the rule-set
version, the deliveries (the outbox) and the tasks; any failure leaves an exception
item with its error class and owner instead.

Under strict ordering (engine.chain_holds), a message that fails holds the later
messages of its source and patient: those found behind it, in the same batch or in
the store, are held, not routed, until it is dealt with."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Dialect, Engine, Select, Table, bindparam, func, select, update

from engine import metrics
from engine.chain_holds import (
    Waiting,
    end_routed_holds,
    hold_messages,
    hold_waiting,
    message_hold_ahead,
    own_hold_place,
    strict,
)
from engine.encoders import Delivery, Encoded, encode
from engine.errors import SwitchboardError
from engine.fhir import read_fhir, to_canonical
from engine.hl7v2 import parse, text_error
from engine.indexed_paths import IndexedPaths
from engine.journal import FHIR_R4, now_utc
from engine.message_lookups import Key as LookupKey
from engine.message_lookups import LookupStatements
from engine.message_lookups import rows as lookup_rows
from engine.model.mapping import Conversion
from engine.model.outcome_event import TASK_OUTCOME, OutcomeEvent
from engine.progress import Heart
from engine.rule_versions import RuleSetCache, Running
from engine.rules.exception_policy import ErrorClass
from engine.rules.rule_set import Outcome, RuleSet
from engine.store.availability import error_name, store_unavailable
from engine.store.database import reader
from engine.store.limits import storable_text
from engine.store.models import Delivery as DeliveryRow
from engine.store.models import ExceptionItem, JournalEntry, StageEvent, Task
from engine.store.prepared import Prepared

log = logging.getLogger("switchboard.pipeline")
STAGES = ("parsed", "normalised", "routed", "minimised", "encoded", "intents_recorded")

# What a worker reports once a batch has committed (see engine.metrics.report). In one
# process it goes straight to the metrics; a worker process sends it to its parent.
Report = Callable[[str, str, float], None]

_JOURNAL: Table = JournalEntry.__table__  # type: ignore[assignment]
_WAITING = (_JOURNAL.c.id, _JOURNAL.c.message_id, _JOURNAL.c.source, _JOURNAL.c.patient_key,
            _JOURNAL.c.raw, _JOURNAL.c.format, _JOURNAL.c.received_at)


class Stop(Protocol):
    """A threading.Event, or a multiprocessing one in a worker process."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass
class _Result:
    """One message through the pure stages: its outcome or why it failed, and when each
    stage ended."""

    journal_id: int
    message_id: str
    source: str
    patient_key: str | None
    received_at: datetime
    outcome: Outcome | None = None
    failure: str | None = None
    stage_times: list[tuple[str, datetime]] = field(default_factory=list)
    # Per destination: the encoded body, or why it could not be encoded.
    encoded: dict[str, Encoded | str] = field(default_factory=dict)
    # Strict ordering: the message id of the failed message a hold in the store makes
    # this one wait for, and the one it waits for now (that one, or a failure earlier
    # in its batch); None when it may be routed.
    held_in_store: str | None = None
    behind: str | None = None
    # The chain's place this message takes when a hold waits for it (a failed message
    # sent again, or its edited copy): the failed original's journal id.
    place: int | None = None
    # The keys of the values at the indexed paths, once it is parsed.
    path_keys: list[LookupKey] = field(default_factory=list)


class Pipeline:
    def __init__(self, engine: Engine, rule_sets: RuleSetCache | None = None,
                 batch: int = 50, report: Report = metrics.report,
                 lane: tuple[int, int] | None = None,
                 indexed: IndexedPaths | None = None) -> None:
        """``lane`` (k, n): take only the messages of lane k out of n. Lanes split the
        journal by patient, so that workers never race for a message and one patient's
        messages are routed in order by one worker. ``indexed``: the HL7 paths whose
        values the message log searches (default: as configured)."""
        self._engine = engine
        self._indexed = indexed or IndexedPaths.configured()
        self._batch = batch
        self._report = report
        self._rule_sets = rule_sets or RuleSetCache(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._statements = PipelineStatements(engine.dialect)
        self._waiting = _JOURNAL.c.status == "received"
        self.heart = Heart("pipeline" if lane is None else f"pipeline-{lane[0]}", report)
        if lane is not None and lane[1] > 1:
            self._waiting = self._waiting & (_lane_key(self._postgres) % lane[1] == lane[0])

    def run_once(self, limit: int = 100) -> int:
        """Process up to ``limit`` journaled messages, oldest first; returns how many
        this worker processed (others may take some of the same batch)."""
        running = self._rule_sets.current()
        done = 0
        while done < limit:
            size = min(self._batch, limit - done)
            taken, seen = self._run_batch(running, size)
            done += taken
            if seen < size:  # the queue is drained
                break
        return done

    def run_until(self, stop: Stop, idle_wait: float = 0.2, gather_wait: float = 0.02) -> None:
        while not stop.is_set():
            try:
                done = self.run_once()
                self.heart.beat(self._rule_sets.current().version)
                if done == 0:
                    stop.wait(idle_wait)
                elif done < self._batch // 2:
                    # A thin pass pays a whole transaction for a few messages: let the
                    # next one gather more (routing waits ``gather_wait`` longer).
                    stop.wait(gather_wait)
            except Exception:  # the store is down: wait and try again, never die
                log.exception("pipeline pass failed; retrying")
                stop.wait(1.0)

    # ---- one batch -------------------------------------------------------------------

    def _run_batch(self, running: Running, size: int) -> tuple[int, int]:
        """(messages processed here, messages seen waiting)."""
        if self._postgres:
            # Row locks, not a database lock: hold them while the pure stages run, and
            # other engines skip these rows instead of waiting.
            with self._engine.begin() as connection:
                rows = connection.execute(
                    self.waiting_query(size).with_for_update(skip_locked=True)).all()
                results = [self._process(running, row) for row in rows]
                self._record(connection, results, running)
        else:
            # SQLite has one writer for the whole file: run the pure stages before taking
            # it, so the journal's writer (and the ACKs waiting on it) never waits for them.
            with reader(self._engine).connect() as connection:
                rows = connection.execute(self.waiting_query(size)).all()
            results = [self._process(running, row) for row in rows]
            # The rows are built and bound (payloads to JSON) before the lock is taken:
            # a worker holding it stalls every journal commit, and with it every ACK.
            bound = self._bind(results, running)
            with self._engine.begin() as connection:
                claimed = self._claim(connection, [r.journal_id for r in results])
                if len(claimed) < len(results):  # another engine took some since
                    results = [r for r in results if r.journal_id in claimed]
                    bound = self._bind(results, running)
                self._record(connection, results, running, bound)
        self._count(results)
        return len(results), len(rows)

    def waiting_query(self, size: int) -> Select[Any]:
        """This worker's oldest ``size`` waiting messages, each with the failed message
        it must wait behind (``held_behind``) and the place it takes in its chain
        (``place``), if any."""
        return (select(*_WAITING, message_hold_ahead(_JOURNAL).label("held_behind"),
                       own_hold_place(_JOURNAL).label("place"))
                .where(self._waiting).order_by(_JOURNAL.c.id).limit(size))

    def _claim(self, connection: Connection, ids: Sequence[int]) -> set[int]:
        """The ids no other worker has taken since they were read, now taken."""
        if not ids:
            return set()
        taken = connection.execute(
            update(_JOURNAL).where(_JOURNAL.c.id.in_(ids), _JOURNAL.c.status == "received")
            .values(status="routing").returning(_JOURNAL.c.id)
        )
        return set(taken.scalars())

    def _process(self, running: Running, row: Any) -> _Result:
        result = _Result(row.id, row.message_id, row.source, row.patient_key, row.received_at,
                         held_in_store=row.held_behind, place=row.place)
        if result.held_in_store is not None:
            return result  # it waits: routed once the failure it is behind is dealt with
        rule_set = running.rule_set
        try:
            if row.format == FHIR_R4:
                fhir = read_fhir(row.raw or b"")
                result.stage_times.append(("parsed", now_utc()))
                record = to_canonical(fhir, received_at=row.received_at)
                conversion = Conversion(record, (), True, (FHIR_R4,))
                result.outcome = rule_set.outcome(conversion)
            elif row.format == TASK_OUTCOME:
                event = OutcomeEvent.read(row.raw or b"")
                conversion, message = event.conversion(rule_set.mapper, rule_set.charset_of)
                result.stage_times.append(("parsed", now_utc()))
                result.outcome = rule_set.outcome(conversion, message)
            else:
                message = parse(row.raw or b"", rule_set.charset_of(row.source))
                unreadable = text_error(message)
                if unreadable is not None:
                    raise unreadable
                result.path_keys = self._indexed.keys(message)
                result.stage_times.append(("parsed", now_utc()))
                result.outcome = rule_set.process(message)
            moment = now_utc()
            result.stage_times.extend((stage, moment) for stage in STAGES[1:4])
            self._encode(result, running)
            result.stage_times.append(("encoded", now_utc()))
        except SwitchboardError as error:
            result.outcome, result.failure = None, str(error)
        except Exception as error:  # a defect must not wedge the queue behind it
            log.exception("processing failed", extra={"message_id": row.message_id})
            result.outcome = None
            result.failure = f"internal error ({type(error).__name__})"
        return result

    @staticmethod
    def _encode(result: _Result, running: Running) -> None:
        """Each delivery's payload in its destination's catalog format. One destination
        that cannot be encoded fails alone: the others still get their message."""
        assert result.outcome is not None
        sent_at = now_utc()
        for delivery in result.outcome.deliveries:
            connection = running.rule_set.connections.get(delivery.destination)
            try:
                if connection is None:
                    raise SwitchboardError(f"'{delivery.destination}' is not in the catalog")
                result.encoded[delivery.destination] = encode(
                    str(connection.format), delivery.payload,
                    Delivery(result.message_id, delivery.destination, sent_at))
            except SwitchboardError as error:
                result.encoded[delivery.destination] = str(error)

    # ---- recording -------------------------------------------------------------------

    def _bind(self, results: list[_Result], running: Running) -> _Bound:
        """The batch's rows, each message's bound on its own: one whose rows cannot be
        bound fails alone, and holds what follows it as any failure does."""
        hold_behind_failures(results, running.rule_set)
        parts = []
        for result in results:
            routed = result.outcome is not None
            parts.append(self._bind_one(result, running))
            if routed and result.outcome is None:
                hold_behind_failures(results, running.rule_set)
        return _Bound.joined(parts)

    def _bind_one(self, result: _Result, running: Running) -> _Bound:
        rows = _Rows(running)
        rows.add(result)
        try:
            return rows.bind(self._statements)
        except Exception as error:
            if store_unavailable(error):
                raise
            _isolate(result, error)
            rows = _Rows(running)
            rows.add(result)
            return rows.bind(self._statements)

    def _record(self, connection: Connection, results: list[_Result],
                running: Running, bound: _Bound | None = None) -> None:
        """Record the batch; when the store refuses it for one message's sake, record
        the messages one by one, and the one it refuses as failed: one message never
        holds back the batch, nor stops the line by failing every pass."""
        if not results:
            return
        try:
            with connection.begin_nested():
                (bound or self._bind(results, running)).write(connection)
            return
        except Exception as error:
            if store_unavailable(error):
                raise
            log.warning("recording a batch failed; recording its messages one by one",
                        extra={"error": error_name(error)})
        for result in results:
            try:
                with connection.begin_nested():
                    self._bind_one(result, running).write(connection)
                continue
            except Exception as error:
                if store_unavailable(error):
                    raise
                _isolate(result, error)
                hold_behind_failures(results, running.rule_set)
            # Now only Switchboard's own words and times: the store takes them.
            with connection.begin_nested():
                self._bind_one(result, running).write(connection)

    def _count(self, results: list[_Result]) -> None:
        """Counted only once committed: a batch that rolls back is processed again."""
        counts: Counter[tuple[str, str]] = Counter()
        moment = now_utc()
        for result in results:
            if result.behind is not None:
                continue  # held: counted when it is routed
            if result.outcome is not None:
                counts["routed", result.source] += 1
                for delivery in result.outcome.deliveries:
                    if delivery.held_by:
                        counts["held", delivery.destination] += 1
                for task in result.outcome.tasks:
                    counts["tasks_created", task.intent.queue] += 1
                    self._report("receive_to_task_created", task.intent.queue,
                                 max(0.0, (moment - result.received_at).total_seconds()))
            else:
                counts["failed", result.source] += 1
            counts["exceptions", result.source] += _exception_count(result)
        for (counter, source), count in counts.items():
            if count:
                self._report(counter, source, count)


def hold_behind_failures(results: Sequence[_Result], rule_set: RuleSet) -> None:
    """Which of ``results`` (a batch, in journal order) wait: those a hold in the store
    is ahead of, and under strict ordering those behind a message of their source and
    patient that failed earlier in the batch."""
    failed: dict[tuple[str, str], str] = {}
    for result in results:
        key = (result.source, result.patient_key or "")
        result.behind = result.held_in_store or (
            failed.get(key) if result.patient_key is not None else None)
        if (result.behind is None and result.outcome is None
                and result.patient_key is not None
                and (result.place is not None or strict(rule_set, result.source))):
            failed[key] = result.message_id


def _isolate(result: _Result, error: BaseException) -> None:
    """Turn ``result`` into a failure the store will take, saying why without quoting
    the message (the error's own text may)."""
    log.warning("a message's outcome cannot be stored; it is failed alone",
                extra={"message_id": result.message_id, "error": error_name(error)})
    result.outcome, result.encoded = None, {}
    result.failure = (f"the store refused this message's outcome ({error_name(error)}); "
                      "it was failed alone so that other messages go on")


def _lane_key(postgres: bool) -> Any:
    """A number per patient: the code of the last character of the patient key (a hex
    digest, so the lanes come out even), or the message's id when it names no patient."""
    code = func.ascii if postgres else func.unicode
    return func.coalesce(code(func.substr(_JOURNAL.c.patient_key, 32, 1)), _JOURNAL.c.id)


def _exception_count(result: _Result) -> int:
    outcome = result.outcome
    if outcome is None:
        return 1
    unencoded = sum(1 for value in result.encoded.values() if not isinstance(value, Encoded))
    unrouted = not outcome.decision.rows and outcome.needs_a_route
    return len(outcome.problems) + unrouted + unencoded


class _Rows:
    """The rows one batch adds to the store, gathered so each table gets one
    executemany statement."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.version = running.version
        self.journal: list[dict[str, Any]] = []
        self.stages: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self.exceptions: list[dict[str, Any]] = []
        self.holds: list[dict[str, Any]] = []
        self.routed_holds: list[int] = []
        self.waiting: list[Waiting] = []
        self.lookups: list[dict[str, Any]] = []

    def add(self, result: _Result) -> None:
        if result.behind is not None:
            assert result.patient_key is not None  # only a patient's messages wait
            self.waiting.append(Waiting(result.journal_id, result.source,
                                        result.patient_key, result.behind))
            return
        # Found by its paths' values whatever became of it: a failure most of all.
        self.lookups.extend(lookup_rows(result.journal_id, result.received_at,
                                        result.path_keys))
        moment = now_utc()
        for stage, at in result.stage_times:
            self.stage(result, stage, at)
        outcome = result.outcome
        if outcome is None:
            failure = storable_text(str(result.failure))
            self.stage(result, "failed", moment)
            self.journal.append(self._status(result, "failed", failure))
            self.exception(result, failure, moment)
            if (result.place is None and result.patient_key is not None
                    and strict(self.running.rule_set, result.source)):
                self.holds.append({"journal_id": result.journal_id, "source": result.source,
                                   "patient_key": result.patient_key})
            return
        if result.place is not None:
            self.routed_holds.append(result.journal_id)
        self.stage(result, "intents_recorded", moment)
        for delivery in outcome.deliveries:
            encoded = result.encoded.get(delivery.destination)
            status = "held" if delivery.held_by else "pending"
            if not isinstance(encoded, Encoded):
                status = "failed"
                self.exception(result, f"cannot encode for {delivery.destination}: "
                               f"{encoded or 'not encoded'}", moment)
            self.deliveries.append({
                "journal_id": result.journal_id, "destination": delivery.destination,
                "patient_key": result.patient_key,
                "sequence": result.journal_id if result.place is None else result.place,
                "status": status,
                "idempotency_key": f"{result.message_id}:{delivery.destination}",
                "payload": delivery.payload, "held_by_row": delivery.held_by, "attempts": 0,
                "media_type": encoded.media_type if isinstance(encoded, Encoded) else None,
                "body": encoded.body if isinstance(encoded, Encoded) else None,
                "next_attempt_at": None, "created_at": moment, "updated_at": moment,
            })
        for task in outcome.tasks:
            intent = task.intent
            self.tasks.append({
                "journal_id": result.journal_id, "queue": intent.queue, "kind": intent.kind,
                "mode": intent.mode, "row_id": intent.row, "status": "open",
                "assignee": None, "payload": task.payload,
                "due_at": None if intent.due_after is None
                else moment + timedelta(seconds=intent.due_after),
                "created_at": moment, "completed_at": None,
            })
        for problem in outcome.problems:
            self.exception(result, f"canonical record: {problem}", moment)
        if not outcome.decision.rows and outcome.needs_a_route:
            self.exception(result, "no route row matched this message: it goes nowhere",
                           moment)
        self.journal.append(self._status(result, "routed", None))

    def stage(self, result: _Result, stage: str, at: datetime) -> None:
        detail = None
        if stage == "normalised" and result.outcome is not None:
            conversion = result.outcome.conversion
            detail = {"issues": [str(i) for i in conversion.issues],
                      "covered": conversion.covered}
        self.stages.append({"journal_id": result.journal_id, "stage": stage, "at": at,
                            "rule_set_version": self.version, "detail": detail})

    def exception(self, result: _Result, summary: str, moment: datetime) -> None:
        """A validation exception on the source connection, owned as its policy says
        and carrying the catalog's recovery procedure."""
        rule_set = self.running.rule_set
        policy = rule_set.policies.resolve(result.source, ErrorClass.VALIDATION)
        connection = rule_set.connections.get(result.source)
        escalation = policy.escalation
        self.exceptions.append({
            "journal_id": result.journal_id, "delivery_id": None,
            "connection_id": result.source, "error_class": "validation",
            "owner_role": str(policy.dead_letter.owner_role), "status": "open",
            "assignee": None, "summary": summary, "detail": None,
            "recovery_procedure": connection.recovery_procedure if connection else None,
            "created_at": moment, "resolved_at": None,
            "escalate_at": moment + timedelta(seconds=escalation.after) if escalation else None,
            "escalate_to": str(escalation.notify_role) if escalation else None,
        })

    def _status(self, result: _Result, status: str, reason: str | None) -> dict[str, Any]:
        return {"journal_key": result.journal_id, "new_status": status,
                "new_reason": reason, "new_version": self.version}

    def bind(self, statements: PipelineStatements) -> _Bound:
        return _Bound([
            (statement, statement.bind_many(rows)) for statement, rows in (
                (statements.stages, self.stages), (statements.deliveries, self.deliveries),
                (statements.tasks, self.tasks), (statements.exceptions, self.exceptions),
                (statements.lookups, self.lookups),
                (statements.journal_status, self.journal))],
            _ChainChanges(self.holds, self.routed_holds, self.waiting))


@dataclass(frozen=True)
class _ChainChanges:
    """What a batch does to the holds of strict ordering: holds for the messages that
    failed, the end of those whose message was routed, and the messages held."""

    holds: list[dict[str, Any]] = field(default_factory=list)
    routed: list[int] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)

    def write(self, connection: Connection) -> None:
        if not (self.holds or self.routed or self.waiting):
            return
        at = now_utc()
        hold_messages(connection, self.holds, at)
        end_routed_holds(connection, self.routed, at)
        hold_waiting(connection, self.waiting, at,
                     lock=connection.dialect.name == "postgresql")


@dataclass(frozen=True)
class _Bound:
    """A batch's rows as the driver's parameters, statement by statement, in order,
    then what the batch does to the holds."""

    statements: list[tuple[Prepared, list[Any]]]
    chains: _ChainChanges = field(default_factory=_ChainChanges)

    @classmethod
    def joined(cls, parts: list[_Bound]) -> _Bound:
        """One batch of ``parts``' rows, still one statement per table."""
        if not parts:
            return cls([])
        return cls([(statement, [row for part in parts for row in part.statements[n][1]])
                    for n, (statement, _) in enumerate(parts[0].statements)],
                   _ChainChanges([h for part in parts for h in part.chains.holds],
                                 [r for part in parts for r in part.chains.routed],
                                 [w for part in parts for w in part.chains.waiting]))

    def write(self, connection: Connection) -> None:
        for statement, parameters in self.statements:
            statement.execute_bound(connection, parameters)
        self.chains.write(connection)


_STAGE_COLUMNS = ("journal_id", "stage", "at", "rule_set_version", "detail")
_DELIVERY_COLUMNS = (
    "journal_id", "destination", "patient_key", "sequence", "status", "idempotency_key",
    "payload", "held_by_row", "attempts", "media_type", "body", "next_attempt_at",
    "created_at", "updated_at")
_TASK_COLUMNS = ("journal_id", "queue", "kind", "mode", "row_id", "status", "assignee",
                 "due_at", "payload", "created_at", "completed_at")
_EXCEPTION_COLUMNS = (
    "journal_id", "delivery_id", "connection_id", "error_class", "owner_role", "status",
    "assignee", "summary", "detail", "recovery_procedure", "created_at", "resolved_at",
    "escalate_at", "escalate_to")


class PipelineStatements:
    """The statements that record a batch, prepared once for the store's dialect: run
    through Core, building them cost a worker more than the database's work."""

    def __init__(self, dialect: Dialect) -> None:
        def insert(model: Any, columns: Sequence[str]) -> Prepared:
            return Prepared.insert(model.__table__, columns, dialect)

        self.stages = insert(StageEvent, _STAGE_COLUMNS)
        self.deliveries = insert(DeliveryRow, _DELIVERY_COLUMNS)
        self.tasks = insert(Task, _TASK_COLUMNS)
        self.exceptions = insert(ExceptionItem, _EXCEPTION_COLUMNS)
        self.lookups = LookupStatements(dialect).insert_new
        self.journal_status = Prepared(
            update(_JOURNAL).where(_JOURNAL.c.id == bindparam("journal_key")).values(
                status=bindparam("new_status"), status_reason=bindparam("new_reason"),
                rule_set_version=bindparam("new_version")),
            dialect)
