"""The pipeline: journal -> parse -> normalise -> route -> minimise -> encode ->
delivery intents, run by workers apart from the listeners so a slow stage never slows
ingest. Each message is processed in one transaction that records every stage with
its time and the rule-set version, the deliveries (the outbox) and the tasks; any
failure leaves an exception item with its error class and owner instead."""

from __future__ import annotations

import logging
import threading

from prometheus_client import Counter
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from engine import metrics
from engine.errors import SwitchboardError
from engine.hl7v2 import parse
from engine.journal import now_utc
from engine.rule_versions import RuleSetCache, Running
from engine.rules.exception_policy import ErrorClass
from engine.rules.rule_set import Outcome
from engine.store.models import Delivery, ExceptionItem, JournalEntry, StageEvent, Task

log = logging.getLogger("switchboard.pipeline")
STAGES = ("parsed", "normalised", "routed", "minimised", "encoded", "intents_recorded")


class Pipeline:
    def __init__(self, engine: Engine, rule_sets: RuleSetCache | None = None,
                 batch: int = 50) -> None:
        self._engine = engine
        self._batch = batch
        self._counts: list[tuple[Counter, str]] = []
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._rule_sets = rule_sets or RuleSetCache(engine)

    def run_once(self, limit: int = 100) -> int:
        """Process up to ``limit`` journaled messages, oldest first; returns how many."""
        running = self._rule_sets.current()
        done = 0
        waiting = self._waiting(limit)
        metrics.QUEUE_DEPTH.set(len(waiting))
        for start in range(0, len(waiting), self._batch):
            # One transaction per batch: one fsync and one hold of SQLite's write lock
            # for many messages, so the journal's writer gets its turn more often.
            self._counts = []
            with self._sessions() as session, session.begin():
                for journal_id in waiting[start:start + self._batch]:
                    done += self._process_one(session, journal_id, running)
            # Counted only once committed: a batch that rolls back is processed again.
            for counter, source in self._counts:
                counter.labels(source).inc()
        return done

    def run_until(self, stop: threading.Event, idle_wait: float = 0.2) -> None:
        while not stop.is_set():
            try:
                if self.run_once() == 0:
                    stop.wait(idle_wait)
            except Exception:  # the store is down: wait and try again, never die
                log.exception("pipeline pass failed; retrying")
                stop.wait(1.0)

    def _waiting(self, limit: int) -> list[int]:
        with Session(self._engine) as session:
            return list(session.scalars(
                select(JournalEntry.id).where(JournalEntry.status == "received")
                .order_by(JournalEntry.id).limit(limit)
            ))

    def _process_one(self, session: Session, journal_id: int, running: Running) -> bool:
        entry = self._claim(session, journal_id)
        if entry is None:  # another worker took it
            return False
        try:
            outcome = running.rule_set.process(parse(entry.raw or b""))
        except SQLAlchemyError:
            raise  # the store, not the message: leave the batch waiting
        except SwitchboardError as error:
            self._failed(session, entry, running, str(error))
            return True
        except Exception as error:  # a defect must not wedge the queue behind it
            log.exception("processing failed", extra={"message_id": entry.message_id})
            self._failed(session, entry, running, f"internal error ({type(error).__name__})")
            return True
        self._record(session, entry, outcome, running)
        return True

    def _claim(self, session: Session, journal_id: int) -> JournalEntry | None:
        """Take one waiting message for this transaction, or None if another worker has.
        PostgreSQL skips rows other engines hold; SQLite's conditional update waits for
        the single writer and then finds the message already taken."""
        waiting = (JournalEntry.id == journal_id, JournalEntry.status == "received")
        if self._engine.dialect.name == "postgresql":
            query = select(JournalEntry).where(*waiting).with_for_update(skip_locked=True)
            return session.scalars(query).first()
        taken = session.execute(update(JournalEntry).where(*waiting).values(status="routing"))
        if getattr(taken, "rowcount", 0) != 1:
            return None
        return session.get(JournalEntry, journal_id)

    def _record(self, session: Session, entry: JournalEntry, outcome: Outcome,
                running: Running) -> None:
        moment = now_utc()
        detail = {"issues": [str(i) for i in outcome.conversion.issues],
                  "covered": outcome.conversion.covered}
        for stage in STAGES:
            session.add(StageEvent(journal_id=entry.id, stage=stage, at=moment,
                                   rule_set_version=running.version,
                                   detail=detail if stage == "normalised" else None))
        for delivery in outcome.deliveries:
            session.add(Delivery(
                journal_id=entry.id, destination=delivery.destination,
                patient_key=entry.patient_key, sequence=entry.id,
                status="held" if delivery.held_by else "pending",
                idempotency_key=f"{entry.message_id}:{delivery.destination}",
                payload=delivery.payload, held_by_row=delivery.held_by, attempts=0,
                created_at=moment, updated_at=moment,
            ))
        for task in outcome.tasks:
            intent = task.intent
            session.add(Task(journal_id=entry.id, queue=intent.queue, kind=intent.kind,
                             mode=intent.mode, row_id=intent.row, status="open",
                             payload=task.payload, created_at=moment))
        for problem in outcome.problems:
            self._exception(session, entry, running, f"canonical record: {problem}")
        if not outcome.decision.rows:
            self._exception(session, entry, running,
                            "no route row matched this message: it goes nowhere")
        entry.status = "routed"
        entry.rule_set_version = running.version
        self._counts.append((metrics.ROUTED, entry.source))

    def _failed(self, session: Session, entry: JournalEntry, running: Running,
                reason: str) -> None:
        entry.status = "failed"
        entry.status_reason = reason
        entry.rule_set_version = running.version
        session.add(StageEvent(journal_id=entry.id, stage="failed", at=now_utc(),
                               rule_set_version=running.version))
        self._exception(session, entry, running, reason)

    def _exception(self, session: Session, entry: JournalEntry, running: Running,
                   summary: str) -> None:
        """A validation exception on the source connection, owned as its policy says
        and carrying the catalog's recovery procedure."""
        rule_set = running.rule_set
        policy = rule_set.policies.resolve(entry.source, ErrorClass.VALIDATION)
        connection = rule_set.connections.get(entry.source)
        session.add(ExceptionItem(
            journal_id=entry.id, connection_id=entry.source, error_class="validation",
            owner_role=str(policy.dead_letter.owner_role), status="open", summary=summary,
            recovery_procedure=connection.recovery_procedure if connection else None,
            created_at=now_utc(),
        ))
        self._counts.append((metrics.EXCEPTIONS, entry.source))
