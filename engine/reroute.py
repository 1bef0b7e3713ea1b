"""Reprocessing a message: routing it again under the rules published now.

A message that failed in the pipeline goes back to it (engine.exception_recovery), and
its open exception item is retried as the exception queue retries it. A routed message
is run through the pure core under the newest published version, and gets deliveries
only to the destinations it has none to yet (whatever became of those): a destination
a broken route missed gets what it missed, and nobody gets a message twice. Each new
delivery is made as the pipeline makes it: its payload minimised and encoded for the
destination, the idempotency key ``<message_id>:<destination>``, and the message's own
place in its patient's order; one held for a review waits for that review's task (made
now if the message has none for that row; an approved review lets it go, a rejected
one cancels it).

Each reprocess is one transaction holding the audit chain's lock, audited as
``message.reprocess`` with the destinations added; its reason is kept on the message's
timeline (or, for a failed message's exception retried, on the item), never in the
trail (free text may name a patient)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.encoders import Delivery as Addressed
from engine.encoders import Encoded, encode
from engine.errors import SwitchboardError
from engine.exception_queue import ExceptionQueue, InBulk
from engine.exception_recovery import requeue_entry
from engine.impact_preview import replayable
from engine.journal import now_utc
from engine.queues import OPEN, NotFound, Refused
from engine.rule_versions import RuleSetCache, Running
from engine.rules.exception_policy import ErrorClass
from engine.rules.impact import Unreadable, evaluate
from engine.rules.rule_set import Outcome
from engine.rules.rule_set import Task as TaskOutcome
from engine.security.audit import AuditLog
from engine.store.models import Delivery, ExceptionItem, JournalEntry, StageEvent, Task

ACTION = "message.reprocess"
HELD_BY_DECISION = {"approved": "pending", "rejected": "cancelled"}
"""What a new delivery held by a row becomes when the message's review for that row
was decided already: it goes, or it is cancelled, as the others it held were."""


@dataclass(frozen=True)
class Reprocessed:
    message_id: str
    outcome: str  # "requeued" (failed: routed again by the pipeline) or "routed"
    version: int | None = None
    added: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "outcome": self.outcome,
                "rule_set_version": self.version, "added": list(self.added)}


class Reroute:
    def __init__(self, engine: Engine, rule_sets: RuleSetCache | None = None,
                 exceptions: ExceptionQueue | None = None,
                 audit: AuditLog | None = None) -> None:
        self._engine = engine
        self._rule_sets = rule_sets or RuleSetCache(engine)
        self._audit = audit or AuditLog(engine)
        self._exceptions = exceptions or ExceptionQueue(engine, self._audit)

    def reprocess(self, message_id: str, actor: str, reason: str | None = None,
                  bulk: str | None = None) -> Reprocessed:
        """Route ``message_id`` again under the newest published rules; Refused when it
        is in no state to be (waiting to be routed, rejected, a duplicate)."""
        item = self._open_failure(message_id)
        if item is not None:
            self._exceptions.retry(item, actor, bulk=None if bulk is None
                                   else InBulk(bulk, reason or ""))
            # The retry is audited as the queue's; this names it a reprocess too, so a
            # bulk job counts it (a second transaction: the retry stands without it).
            with Session(self._engine) as session, session.begin():
                self._audit.record(session, actor, ACTION, "message", message_id, {
                    "outcome": "requeued", "added": [], "exception": item,
                    **({"bulk": bulk} if bulk else {})})
            return Reprocessed(message_id, "requeued")
        running = self._rule_sets.current()
        with Session(self._engine) as session, session.begin():
            self._audit.lock(session)
            entry = session.scalars(select(JournalEntry).where(
                JournalEntry.message_id == message_id).with_for_update()).first()
            if entry is None:
                raise NotFound(f"no message {message_id}", hint="List messages to find its id")
            now = now_utc()
            note = {"by": actor, **({"reason": reason} if reason else {}),
                    **({"bulk": bulk} if bulk else {})}
            if entry.status == "failed":
                requeue_entry(session, entry, now, {"reprocess": note})
                done = Reprocessed(message_id, "requeued")
            elif entry.status == "routed":
                added = _add_missing(session, entry, running, now)
                session.add(StageEvent(journal_id=entry.id, stage="rerouted", at=now,
                                       rule_set_version=running.version,
                                       detail={"added": list(added), **note}))
                done = Reprocessed(message_id, "routed", running.version, added)
            else:
                raise _not_reprocessable(entry)
            session.flush()
            detail: dict[str, Any] = {"outcome": done.outcome, "added": list(done.added)}
            if done.version is not None:
                detail["rule_set_version"] = done.version
            if bulk:
                detail["bulk"] = bulk
            self._audit.record(session, actor, ACTION, "message", message_id, detail)
        return done

    def _open_failure(self, message_id: str) -> int | None:
        """The open exception item of a message that failed in the pipeline: retrying
        it is reprocessing the message, and settles the item too."""
        with Session(self._engine) as session:
            return session.scalar(
                select(ExceptionItem.id).join(JournalEntry,
                                              JournalEntry.id == ExceptionItem.journal_id)
                .where(JournalEntry.message_id == message_id, JournalEntry.status == "failed",
                       ExceptionItem.delivery_id.is_(None), ExceptionItem.status.in_(OPEN))
                .order_by(ExceptionItem.id).limit(1))


def _add_missing(session: Session, entry: JournalEntry, running: Running,
                 now: datetime) -> tuple[str, ...]:
    """The deliveries ``entry`` lacks under ``running``, added; their destinations."""
    outcome = _outcome(entry, running)
    existing = set(session.scalars(
        select(Delivery.destination).where(Delivery.journal_id == entry.id)))
    missing = [d for d in outcome.deliveries if d.destination not in existing]
    for delivery in missing:
        status = "pending"
        if delivery.held_by:
            status = _held_status(session, entry, delivery.held_by, outcome, now)
        encoded = _encoded(running, entry.message_id, delivery.destination, delivery.payload,
                           now)
        if not isinstance(encoded, Encoded):
            status = "failed"
            session.add(_exception(entry, running, f"cannot encode for "
                                   f"{delivery.destination}: {encoded}", now))
        session.add(Delivery(
            journal_id=entry.id, destination=delivery.destination,
            patient_key=entry.patient_key, sequence=entry.id, status=status,
            idempotency_key=f"{entry.message_id}:{delivery.destination}",
            payload=delivery.payload, held_by_row=delivery.held_by, attempts=0,
            media_type=encoded.media_type if isinstance(encoded, Encoded) else None,
            body=encoded.body if isinstance(encoded, Encoded) else None,
            next_attempt_at=None, created_at=now, updated_at=now))
    return tuple(d.destination for d in missing)


def _outcome(entry: JournalEntry, running: Running) -> Outcome:
    rule_set = running.rule_set
    item = replayable(entry.raw or b"", entry.format or "hl7v2", entry.received_at,
                      rule_set.charset_of(entry.source))
    outcome = (f"cannot be read ({item.error})" if isinstance(item, Unreadable)
               else evaluate(rule_set, item))
    if isinstance(outcome, str):
        raise Refused(f"message {entry.message_id} {outcome} under version "
                      f"{running.version}", hint="Fix the rules, or handle it by hand")
    return outcome


def _held_status(session: Session, entry: JournalEntry, row: str, outcome: Outcome,
                 now: datetime) -> str:
    """held while the message's review for ``row`` waits (made now when it has none),
    else as that review decided."""
    decided = session.scalars(select(Task.status).where(
        Task.journal_id == entry.id, Task.row_id == row).order_by(Task.id.desc())).first()
    if decided is None:
        task = next(t for t in outcome.tasks if t.intent.row == row)
        session.add(_task(entry, task, now))
        return "held"
    return HELD_BY_DECISION.get(decided, "held")


def _task(entry: JournalEntry, task: TaskOutcome, now: datetime) -> Task:
    intent = task.intent
    return Task(journal_id=entry.id, queue=intent.queue, kind=intent.kind, mode=intent.mode,
                row_id=intent.row, status="open", assignee=None, payload=task.payload,
                due_at=None if intent.due_after is None
                else now + timedelta(seconds=intent.due_after),
                created_at=now, completed_at=None)


def _encoded(running: Running, message_id: str, destination: str,
             payload: dict[str, Any], now: datetime) -> Encoded | str:
    connection = running.rule_set.connections.get(destination)
    try:
        if connection is None:
            raise SwitchboardError(f"'{destination}' is not in the catalog")
        return encode(str(connection.format), payload, Addressed(message_id, destination, now))
    except SwitchboardError as error:
        return str(error)


def _exception(entry: JournalEntry, running: Running, summary: str,
               now: datetime) -> ExceptionItem:
    """As the pipeline files a delivery it cannot encode: a validation exception on
    the source, owned as its policy says."""
    rule_set = running.rule_set
    policy = rule_set.policies.resolve(entry.source, ErrorClass.VALIDATION)
    connection = rule_set.connections.get(entry.source)
    escalation = policy.escalation
    return ExceptionItem(
        journal_id=entry.id, delivery_id=None, connection_id=entry.source,
        error_class="validation", owner_role=str(policy.dead_letter.owner_role),
        status="open", assignee=None, summary=summary, detail=None,
        recovery_procedure=connection.recovery_procedure if connection else None,
        created_at=now, resolved_at=None,
        escalate_at=now + timedelta(seconds=escalation.after) if escalation else None,
        escalate_to=str(escalation.notify_role) if escalation else None)


def _not_reprocessable(entry: JournalEntry) -> Refused:
    if entry.status in ("received", "routing"):
        return Refused(f"message {entry.message_id} is waiting to be routed already",
                       hint="Wait for the pipeline")
    if entry.status == "held":
        return Refused(f"message {entry.message_id} waits behind a failed message of the "
                       "same patient", hint="Deal with that failure first: this one follows")
    return Refused(f"message {entry.message_id} was {entry.status} when received: there "
                   "is nothing to route", hint="Send a corrected message, or reprocess its "
                   "exception with an edited copy")
