"""The work queue: tasks for people, as the pipeline's checkpoints, the task-queue
sink and escalations create them. A ``hold`` task keeps its route row's deliveries
waiting (status ``held``) until someone who may act in its queue decides: approval
releases them to the outbox, rejection cancels them (the review decided they must not
go). ``notify`` and ``work`` tasks are completed, with a state when their route row
names states. Every decision journals the task's outcome event (engine.task_outcome) in
the decision's own transaction, for the routes to send on.

Who may see, read and act on a task is its queue's, as the published catalog says
(:mod:`engine.security.task_access`); every method checks it for the principal it is
given, so the REST API, the command line and the console cannot differ. Every action
checks the task's state and changes it in one transaction that holds the audit chain's
lock from its start, with its audit event. Task payloads may hold PHI: only ``show``
returns them, to those their queue lets read them, and each showing is audited.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, func, select, update
from sqlalchemy.orm import Session

from engine import metrics
from engine.journal import now_utc
from engine.outbox import unpark_behind
from engine.queues import (
    OPEN,
    Forbidden,
    Invalid,
    NotFound,
    Page,
    Refused,
    check_page,
    iso,
    settled,
)
from engine.result_flags import flagged
from engine.rule_versions import published_names, published_task_queues, published_task_rules
from engine.rules.catalog_entry import Connection, TaskQueueEndpoint
from engine.security.audit import AuditLog
from engine.security.identity import Principal
from engine.security.permissions import check_assignee
from engine.security.task_access import TaskRules
from engine.store.database import reader
from engine.store.models import Delivery, JournalEntry, Task
from engine.task_content import QueueScopes
from engine.task_outcome import (
    check_state,
    checkpoint_of,
    checkpoints_of,
    journal_outcome,
    role_of,
    states_in,
)

FILTERS = {"queue": Task.queue, "status": Task.status, "assignee": Task.assignee,
           "kind": Task.kind}
NOT_ARRIVING = frozenset({"retrying", "dead", "failed"})
FAILING_WINDOW = timedelta(hours=1)
"""A released delivery's statuses that mean it has not reached its destination because
sending it failed."""
SORTS = {"created": Task.id, "due": Task.due_at, "queue": Task.queue, "status": Task.status,
         "kind": Task.kind, "assignee": Task.assignee}
"""What a listing may be sorted by; ``-`` before the name sorts the other way."""
Rows = list[dict[str, Any]]
# Both stores put tasks without a due time or an assignee last, either way.
_NULLABLE = frozenset({"due", "assignee"})


class WorkQueue:
    """The tasks in the store behind ``engine``."""

    def __init__(self, engine: Engine, audit: AuditLog | None = None) -> None:
        self._engine = engine
        self._reads = reader(engine)
        self._audit = audit or AuditLog(engine)

    def list(self, queue: str | None = None, status: str | Sequence[str] | None = None,
             assignee: str | None = None, kind: str | None = None, page: int = 1,
             per_page: int = 50, *, viewer: Principal, sort: str = "created") -> Page:
        """The tasks ``viewer`` may see that match every filter given (``status`` one
        status or several), oldest first unless ``sort`` (one of SORTS) says otherwise:
        by ``due``, the overdue come first. Each names its message and what its route
        row says it is for, and the patient's first identifier and name and the abnormal
        results, critical first (read from the payload as its queue's scope allows),
        where ``viewer`` may read the payload."""
        check_page(page, per_page)
        query = select(Task, JournalEntry.message_id, JournalEntry.control_id).outerjoin(
            JournalEntry, JournalEntry.id == Task.journal_id)
        for name, value in (("queue", queue), ("assignee", assignee), ("kind", kind)):
            if value:
                query = query.where(FILTERS[name] == value)
        if isinstance(status, str) and status:
            query = query.where(Task.status == status)
        elif status and not isinstance(status, str):
            query = query.where(Task.status.in_(list(status)))
        with Session(self._reads) as session:
            queues = published_task_queues(session)
            rules, scopes = TaskRules.of(queues), QueueScopes.of(queues)
            visible = rules.visible(viewer.roles)
            if visible is not None:
                if not visible:
                    raise Forbidden("your role may see no task queue",
                                    hint="Ask an admin to name your role in a task queue's "
                                         "task_access")
                if queue:
                    rules.check(viewer.roles, queue, "task.list")
                query = query.where(Task.queue.in_(sorted(visible)))
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(query.order_by(*_order(sort))
                                   .limit(per_page).offset((page - 1) * per_page)).all()
            purposes = checkpoints_of(session, (row[0] for row in rows))
            items = []
            for task, message_id, control_id in rows:
                item = task_summary(task, message_id, control_id)
                item["for"] = _described(purposes.get(task.id))
                if rules.may(viewer.roles, task.queue, "task.payload"):
                    readable = scopes.cut(task.queue, task.payload)
                    item["patient"] = patient_reference(readable)
                    item["patient_name"] = patient_name(readable)
                    item["abnormal"] = flagged((readable or {}).get("results"))
                items.append(item)
            return Page(items, page, per_page, total)

    def waiting(self, viewer: Principal) -> Rows:
        """Each queue ``viewer`` may see, by its catalog name and description, with how
        many of its tasks wait for someone and how many of those are overdue: a
        person's queues at a glance."""
        now = now_utc()
        query = (select(Task.queue, func.count(),
                        func.coalesce(func.sum(case((Task.due_at < now, 1), else_=0)), 0))
                 .where(Task.status.in_(OPEN)).group_by(Task.queue))
        with Session(self._reads) as session:
            connections = published_task_queues(session)
            rules = TaskRules.of(connections)
            visible = rules.visible(viewer.roles)
            if visible is not None:
                query = query.where(Task.queue.in_(sorted(visible)))
            counts = {name: (int(waiting), int(overdue))
                      for name, waiting, overdue in session.execute(query)}
        named = _named(connections)
        queues = set(counts) | (set(rules.queues) if visible is None else set(visible))
        return [{"queue": queue, "name": named.get(queue, (queue, None))[0],
                 "description": named.get(queue, (queue, None))[1],
                 "waiting": counts.get(queue, (0, 0))[0],
                 "overdue": counts.get(queue, (0, 0))[1]} for queue in sorted(queues)]

    def task_queues(self) -> Sequence[Connection]:
        """The task-queue entries of the newest published catalog: who works which
        queue, as the role descriptions show it."""
        with Session(self._reads) as session:
            return published_task_queues(session)

    def access(self) -> TaskRules:
        """Who may work each queue, as the newest published catalog says now: for a
        screen to offer only what its user may do (each action checks it again)."""
        with Session(self._reads) as session:
            return published_task_rules(session)

    def show(self, task_id: int, viewer: Principal) -> dict[str, Any]:
        """The task, what its route row says it is for and the states it may end in,
        and the deliveries it holds; with its payload, cut to its queue's data scope,
        for whom its queue lets read it: that view is audited, as it may hold PHI."""
        with Session(self._engine) as session, session.begin():
            task = _found(session.get(Task, task_id), task_id)
            queues = published_task_queues(session)
            rules = TaskRules.of(queues)
            rules.check(viewer.roles, task.queue, "task.show")
            message = _message(session, task)
            checkpoint = checkpoint_of(session, task)
            view = {**task_summary(task, *message), "for": _described(checkpoint),
                    "states": list(states_in(checkpoint)), "holds": _holds(session, task)}
            if rules.may(viewer.roles, task.queue, "task.payload"):
                view["payload"] = QueueScopes.of(queues).cut(task.queue, task.payload)
                self._audit.record(session, viewer.name, "task.view", "task", str(task_id),
                                   None)
        return view

    def holds(self, task_id: int, viewer: Principal) -> Rows:
        """The deliveries the task holds, and where each is now (an approved review's
        are on their way): no payload, so not audited."""
        with Session(self._reads) as session:
            task = _found(session.get(Task, task_id), task_id)
            published_task_rules(session).check(viewer.roles, task.queue, "task.show")
            return _holds(session, task)

    def assign(self, task_id: int, assignee: str, actor: Principal) -> dict[str, Any]:
        """Give an open task to someone who may act on it."""
        with self._changing(task_id, actor, "task.assign") as (session, task):
            allowed = published_task_rules(session).roles(task.queue, _acting(task))
            check_assignee(session, assignee, allowed)
            task.assignee, task.status = assignee, "assigned"
            self._record(session, actor.name, "task.assign", task, {"assignee": assignee})
        return self.summary(task_id)

    def unassign(self, task_id: int, actor: Principal) -> dict[str, Any]:
        """Give a claimed task back to its queue, for anyone there to take: a claim held
        by someone who went off shift would otherwise keep the task from the others."""
        with self._changing(task_id, actor, "task.unassign") as (session, task):
            if task.status != "assigned" or task.assignee is None:
                raise Refused(f"task {task_id} is not claimed by anyone",
                              hint="Only a claimed task can be given back")
            released = task.assignee
            task.assignee, task.status = None, "open"
            self._record(session, actor.name, "task.unassign", task, {"assignee": released})
        return self.summary(task_id)

    def undelivered(self, viewer: Principal, limit: int = 20) -> Rows:
        """The reviews approved in the queues ``viewer`` may see whose released delivery
        has not arrived because sending it failed (it is being retried, or it gave up and
        is in the exception queue): newest first. The person who approved a result
        believes it is in the chart; this is how they learn it is not."""
        query = (select(Task.id, Task.queue, Task.decided_by, Delivery.destination,
                        Delivery.status)
                 .join(Delivery, (Delivery.journal_id == Task.journal_id)
                       & (Delivery.held_by_row == Task.row_id))
                 .where(Task.mode == "hold", Task.status == "approved",
                        Delivery.status.in_(sorted(NOT_ARRIVING)))
                 .order_by(Task.id.desc(), Delivery.id).limit(limit))
        with Session(self._reads) as session:
            visible = published_task_rules(session).visible(viewer.roles)
            if visible is not None:
                if not visible:
                    return []
                query = query.where(Task.queue.in_(sorted(visible)))
            rows = session.execute(query).all()
            names = published_names(session, (row.destination for row in rows))
            return [{"task_id": row.id, "queue": row.queue, "approved_by": row.decided_by,
                     "destination": row.destination,
                     "name": names.get(row.destination, row.destination),
                     "status": row.status} for row in rows]

    def approve(self, task_id: int, actor: Principal,
                reason: str | None = None) -> dict[str, Any]:
        """Approve a hold task: its held deliveries go to the outbox."""
        return self._decide(task_id, actor, "approved", "pending", reason)

    def reject(self, task_id: int, actor: Principal, reason: str) -> dict[str, Any]:
        """Reject a hold task: its held deliveries are cancelled, for good. The reason is
        kept on the task, not in the audit trail: free text may name a patient."""
        if not reason or not reason.strip():
            raise Invalid("a rejection needs a reason",
                          hint="Say why the deliveries must not go")
        return self._decide(task_id, actor, "rejected", "cancelled", reason)

    def complete(self, task_id: int, actor: Principal, state: str | None = None,
                 reason: str | None = None) -> dict[str, Any]:
        """Mark a notify or work task done, in one of the states its route row names
        (and only then with a state)."""
        with self._changing(task_id, actor, "task.complete") as (session, task):
            if task.mode == "hold":
                raise Refused(f"task {task_id} holds deliveries: it is decided, not "
                              "completed", hint="Approve or reject it")
            check_state(session, task, state)
            self._finish(task, "completed", actor.name)
            self._settle(session, task, "completed", actor.name, state, reason)
            self._record(session, actor.name, "task.complete", task,
                         {"state": state} if state else {})
            received_at = _received_at(session, task)
        self._observe(task, received_at)
        return self.summary(task_id)

    def summary(self, task_id: int) -> dict[str, Any]:
        """The task as listed, without its payload."""
        with Session(self._reads) as session:
            task = _found(session.get(Task, task_id), task_id)
            return task_summary(task, *_message(session, task))

    # ---- one transaction per action ----------------------------------------------------

    def _decide(self, task_id: int, actor: Principal, outcome: str, delivery_status: str,
                text: str | None) -> dict[str, Any]:
        action = "task.approve" if outcome == "approved" else "task.reject"
        with self._changing(task_id, actor, action) as (session, task):
            if task.mode != "hold":
                raise Refused(f"task {task_id} is a {task.mode} task and holds nothing",
                              hint="Complete it instead")
            changed = _release_holds(session, task, delivery_status)
            self._finish(task, outcome, actor.name)
            self._settle(session, task, outcome, actor.name, None, text)
            self._record(session, actor.name, action, task,
                         {"deliveries": changed, "delivery_status": delivery_status})
            received_at = _received_at(session, task)
        self._observe(task, received_at)
        return self.summary(task_id)

    @contextmanager
    def _changing(self, task_id: int, actor: Principal,
                  action: str) -> Iterator[tuple[Session, Task]]:
        """A writing transaction holding the audit lock and the open task, on which
        ``actor`` may take ``action``."""
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            self._audit.lock(session)
            task = _found(session.get(Task, task_id, with_for_update=True), task_id)
            published_task_rules(session).check(actor.roles, task.queue, action)
            if task.status not in OPEN:
                raise settled("task", task_id, task.status)
            yield session, task

    @staticmethod
    def _finish(task: Task, status: str, actor: str) -> None:
        task.status, task.completed_at, task.decided_by = status, now_utc(), actor

    @staticmethod
    def _settle(session: Session, task: Task, outcome: str, actor: str, state: str | None,
                reason: str | None) -> None:
        """Keep the decision on the task and journal it as the task's outcome event."""
        decision: dict[str, Any] = {"outcome": outcome, "by": actor,
                                    "at": iso(task.completed_at)}
        if state:
            decision["state"] = state
        if reason:
            decision["reason"] = reason
        task.payload = {**(task.payload or {}), "decision": decision}
        journal_outcome(session, task, outcome, state=state, reason=reason,
                        role=role_of(session, actor))

    def _record(self, session: Session, actor: str, action: str, task: Task,
                detail: dict[str, Any]) -> None:
        session.flush()
        self._audit.record(session, actor, action, "task", str(task.id),
                           {"status": task.status, **detail})

    @staticmethod
    def _observe(task: Task, received_at: datetime | None) -> None:
        """Receipt to completion, per queue; counted once committed. A task with no
        message (none received) has no such time."""
        if received_at is not None and task.completed_at is not None:
            seconds = max(0.0, (task.completed_at - received_at).total_seconds())
            metrics.RECEIVE_TO_TASK_COMPLETED.labels(task.queue).observe(seconds)


def _order(sort: str) -> list[Any]:
    """ORDER BY for ``sort``: its column, then the oldest task first (newest when
    reversed), so a page boundary falls in the same place on both stores."""
    name = sort.removeprefix("-")
    column = SORTS.get(name)
    if column is None:
        raise Invalid(f"cannot sort tasks by {sort!r}",
                      hint=f"Sort by one of {', '.join(SORTS)}, with - before it to reverse")
    backwards = sort.startswith("-")
    keys: list[Any] = [column.is_(None)] if name in _NULLABLE else []
    keys.append(column.desc() if backwards else column)
    if name != "created":
        keys.append(Task.id.desc() if backwards else Task.id)
    return keys


def task_summary(task: Task, message_id: str | None = None,
                 control_id: str | None = None) -> dict[str, Any]:
    """What a listing shows of a task: which message it came from, no payload."""
    return {"id": task.id, "queue": task.queue, "kind": task.kind, "mode": task.mode,
            "message_id": message_id, "control_id": control_id,
            "status": task.status, "assignee": task.assignee, "due_at": iso(task.due_at),
            "created_at": task.created_at.isoformat(), "completed_at": iso(task.completed_at),
            "decided_by": task.decided_by, "row_id": task.row_id}


def _release_holds(session: Session, task: Task, status: str) -> list[int]:
    """Move the deliveries this task holds (its message's, held by its route row) to
    ``status``; their ids. Only ``held`` ones: nothing else is this task's to decide."""
    if task.journal_id is None or task.row_id is None:
        return []
    result = session.execute(
        update(Delivery).where(Delivery.journal_id == task.journal_id,
                               Delivery.held_by_row == task.row_id,
                               Delivery.status == "held")
        .values(status=status, updated_at=now_utc()).returning(Delivery.id)
        .execution_options(synchronize_session=False))
    released = sorted(result.scalars())
    # What waited behind the hold need not wait out its recheck: the chain moves now.
    unpark_behind(session.connection(), released)
    return released


def _holds(session: Session, task: Task) -> list[dict[str, Any]]:
    if task.mode != "hold" or task.journal_id is None or task.row_id is None:
        return []
    rows = session.execute(
        select(Delivery.id, Delivery.destination, Delivery.status, Delivery.attempts,
               Delivery.error_class, Delivery.next_attempt_at)
        .where(Delivery.journal_id == task.journal_id, Delivery.held_by_row == task.row_id)
        .order_by(Delivery.id)).all()
    destinations = {row.destination for row in rows}
    names = published_names(session, destinations)
    failing = _failing_now(session, destinations)
    # The kind of failure and never its text: a destination's answer may quote the patient.
    return [{"delivery_id": row.id, "destination": row.destination,
             "name": names.get(row.destination, row.destination), "status": row.status,
             "attempts": row.attempts, "error_class": row.error_class,
             "next_attempt_at": iso(row.next_attempt_at),
             "destination_failing": row.destination in failing} for row in rows]


def _failing_now(session: Session, destinations: set[str]) -> set[str]:
    """The destinations whose deliveries failed within FAILING_WINDOW and are still not
    delivered: a reviewer is told before approving that what they release may not get
    through (found in the nurses' check: a second result was approved into a destination
    that had just failed the first)."""
    if not destinations:
        return set()
    since = now_utc() - FAILING_WINDOW
    return set(session.scalars(
        select(Delivery.destination).distinct()
        .where(Delivery.destination.in_(sorted(destinations)),
               Delivery.status.in_(sorted(NOT_ARRIVING)), Delivery.updated_at >= since)))


def patient_reference(payload: dict[str, Any] | None) -> str | None:
    """The patient's first identifier in a task's payload, as ``value`` or
    ``system|value``: enough for the person the task is for to find the chart."""
    patient = (payload or {}).get("patient")
    identifiers = patient.get("identifiers") if isinstance(patient, dict) else None
    if not identifiers or not isinstance(identifiers[0], dict):
        return None
    first = identifiers[0]
    value, system = first.get("value"), first.get("system")
    if not value:
        return None
    return f"{system}|{value}" if system else str(value)


def patient_name(payload: dict[str, Any] | None) -> str | None:
    """The patient's first name in a task's payload as a chart heads it: "DOE, JANE"."""
    patient = (payload or {}).get("patient")
    names = patient.get("names") if isinstance(patient, dict) else None
    if not names or not isinstance(names[0], dict):
        return None
    first = names[0]
    given = " ".join(str(first[key]) for key in ("given", "middle") if first.get(key))
    text = ", ".join(part for part in (str(first.get("family") or ""), given) if part)
    return text or None


def _message(session: Session, task: Task) -> tuple[str | None, str | None]:
    """The message id and control id of the message the task came from."""
    if task.journal_id is None:
        return None, None
    found = session.execute(select(JournalEntry.message_id, JournalEntry.control_id)
                            .where(JournalEntry.id == task.journal_id)).first()
    return (found[0], found[1]) if found else (None, None)


def _named(connections: list[Connection]) -> dict[str, tuple[str, str | None]]:
    """Each task queue's catalog name and description, by the name its tasks carry
    (the connection's id first, as for access)."""
    named: dict[str, tuple[str, str | None]] = {}
    for connection in connections:
        if isinstance(connection.endpoint, TaskQueueEndpoint):
            named[connection.endpoint.queue] = _name_of(connection)
    for connection in connections:
        named[connection.id] = _name_of(connection)
    return named


def _name_of(connection: Connection) -> tuple[str, str | None]:
    return connection.name, connection.description or None


def _described(checkpoint: Mapping[str, Any] | None) -> str | None:
    """What the task is for: the description its route row gave it, in the rule-set
    version that routed its message."""
    description = (checkpoint or {}).get("description")
    return str(description) if description else None


def _received_at(session: Session, task: Task) -> datetime | None:
    if task.journal_id is None:
        return None
    return session.scalar(select(JournalEntry.received_at)
                          .where(JournalEntry.id == task.journal_id))


def _acting(task: Task) -> str:
    """The action of whoever may be handed ``task``."""
    return "task.approve" if task.mode == "hold" else "task.complete"


def _found(task: Task | None, task_id: int) -> Task:
    if task is None:
        raise NotFound(f"no task {task_id}", hint="See the work queue (GET /api/tasks) for ids")
    return task
