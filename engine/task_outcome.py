"""A task's outcome, written back: deciding a task (completing, approving or rejecting
it) journals an outcome event in the decision's own transaction, before anything else
can happen to it, so a process that dies right after the commit loses nothing and one
that dies before it decided nothing. The event has its own message id and the task's
patient, so the pipeline routes it like any journaled message, in that patient's
order: a route row with ``match: {type: TASK, event: completed}`` sends it on.

A completion may carry a state: the states the task's route row names on its notify
checkpoint (``states``), in the rule-set version that made the task. When the row names
some, one is required; when it names none, none is taken.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import message_lookups
from engine.model.outcome_event import EVENT_TYPE, TASK_OUTCOME, Origin, OutcomeEvent
from engine.queues import Unfit
from engine.store.models import JournalEntry, RuleSetVersion, StageEvent, Task, User

SOURCE = "work-queue"
"""The journal source of every outcome event: the work queue, not a connection."""


def journal_outcome(session: Session, task: Task, outcome: str, *, state: str | None = None,
                    reason: str | None = None, role: str | None = None) -> str:
    """Journal the outcome of ``task``, decided (its status, ``completed_at``) in
    ``session``'s transaction; the event's message id. Waiting to be routed, it holds
    up its patient's later deliveries, as a received message does."""
    assert task.completed_at is not None, "journal an outcome once the task is decided"
    source = _originating(session, task)
    event = OutcomeEvent(
        task.id, task.queue, task.kind, task.mode, task.row_id, outcome, task.completed_at,
        state, reason, role, _origin(source))
    raw = event.to_bytes()
    entry = JournalEntry(
        message_id=str(uuid.uuid4()), received_at=task.completed_at, source=SOURCE,
        format=TASK_OUTCOME, peer=None, sending_application="", sending_facility="",
        control_id=event.control_id, content_hash=hashlib.sha256(raw).hexdigest(),
        message_type=EVENT_TYPE, event=outcome,
        patient_key=source.patient_key if source is not None else None,
        status="received", size_bytes=len(raw), raw=raw,
        # The dedupe index then refuses a second event for one task.
        is_original=True)
    session.add(entry)
    session.flush()
    connection = session.connection()
    message_lookups.add(connection, entry.id, task.completed_at,
                        message_lookups.identity_keys(event.control_id, None))
    if source is not None:
        message_lookups.copy_patient(connection, source.id, entry.id, task.completed_at)
    session.add(StageEvent(journal_id=entry.id, stage="journaled", at=task.completed_at))
    return entry.message_id


def role_of(session: Session, actor: str) -> str | None:
    """The decider's role, which the event names instead of the person."""
    return session.scalar(select(User.role).where(User.name == actor))


def check_state(session: Session, task: Task, state: str | None) -> None:
    """Refuse a state the task's route row does not name, or no state when it names
    some; Unfit says which it takes."""
    allowed = states_of(session, task)
    if not allowed:
        if state is not None:
            raise Unfit(f"task {task.id} takes no state: its route row names none",
                          hint="Complete it without a state")
        return
    choices = ", ".join(allowed)
    if state is None:
        raise Unfit(f"task {task.id} needs a state: one of {choices}",
                      hint="Say how it ended, e.g. with --state or \"state\"")
    if state not in allowed:
        raise Unfit(f"{state!r} is not a state of task {task.id}: one of {choices}",
                      hint="Choose one of the states its route row names")


def states_of(session: Session, task: Task) -> tuple[str, ...]:
    """The states the task's route row names on its checkpoint, if any."""
    return states_in(checkpoint_of(session, task))


def states_in(checkpoint: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The states a route row's checkpoint names, if any."""
    states = (checkpoint or {}).get("states")
    if not isinstance(states, list):
        return ()
    return tuple(str(state) for state in states)


def checkpoint_of(session: Session, task: Task) -> Mapping[str, Any] | None:
    """The route row that made the task, in the rule-set version that routed its
    message: its checkpoint, with the row's description when the checkpoint has none."""
    if task.row_id is None or task.journal_id is None:
        return None
    content = session.scalar(
        select(RuleSetVersion.content).join(
            JournalEntry, JournalEntry.rule_set_version == RuleSetVersion.version)
        .where(JournalEntry.id == task.journal_id))
    return checkpoint_in(content, task.row_id)


def checkpoints_of(session: Session, tasks: Iterable[Task]) -> dict[int, Mapping[str, Any]]:
    """:func:`checkpoint_of` for many tasks, by task id, reading each rule-set version
    once: a page of a listing names a few versions, not one per task."""
    made = [task for task in tasks if task.row_id is not None and task.journal_id is not None]
    if not made:
        return {}
    versions = dict(session.execute(
        select(JournalEntry.id, JournalEntry.rule_set_version)
        .where(JournalEntry.id.in_({task.journal_id for task in made}))).all())
    contents: dict[int, Any] = dict(session.execute(
        select(RuleSetVersion.version, RuleSetVersion.content)
        .where(RuleSetVersion.version.in_({v for v in versions.values() if v is not None})))
        .all())
    found = {}
    for task in made:
        assert task.row_id is not None and task.journal_id is not None
        version = versions.get(task.journal_id)
        content = contents.get(version) if version is not None else None
        checkpoint = checkpoint_in(content, task.row_id)
        if checkpoint is not None:
            found[task.id] = checkpoint
    return found


def checkpoint_in(content: Mapping[str, Any] | None, row_id: str) -> Mapping[str, Any] | None:
    """Route row ``row_id``'s checkpoint in a version's content, with the row's
    description when the checkpoint has none; None when no routes document has it."""
    for document in (content or {}).get("documents", []):
        if document.get("kind") != "routes":
            continue
        for row in (document.get("data") or {}).get("rows", []):
            if isinstance(row, dict) and row.get("id") == row_id:
                checkpoint = row.get("checkpoint") or {}
                return {**checkpoint, "description": checkpoint.get("description")
                        or row.get("description")}
    return None


def _originating(session: Session, task: Task) -> JournalEntry | None:
    if task.journal_id is None:
        return None
    return session.get(JournalEntry, task.journal_id)


def _origin(entry: JournalEntry | None) -> Origin | None:
    """The originating message as the event carries it; none when it has no bytes (a
    task for no message, or an oversize frame's entry)."""
    if entry is None or entry.raw is None:
        return None
    return Origin(entry.message_id, entry.source, entry.format, entry.received_at,
                  bytes(entry.raw))
