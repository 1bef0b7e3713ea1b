"""Bulk jobs: one action with one reason over many items (exception items, messages),
each item acted on, checked and audited exactly as the single action is, one
transaction per item. What a job may do and to what is its ``BulkWork``
(engine.exception_bulk, engine.message_bulk).

A job is kept in the audit trail, which every web process shares, rather than in a
table of its own: a ``<work>.bulk`` event (target ``<work>_bulk``, the job's id) names
the action and the items; each item's own event (the action's, e.g.
``exception.retry``) names the job; an item refused gets a ``<work>.bulk_refused``
event of the job saying why; and ``<work>.bulk_done`` ends it with its counts. So any
process can tell how far a job has gone from the very events that prove what was
done, and nothing else has to be kept in step with them. The reason is kept on each
item, never in the trail (free text may name a patient). A job its process stops
midway ends as stopped, the items it had not reached untouched; a process that dies
leaves it without an end, and its page says how far it got.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from engine.queues import Invalid, NotFound, Refused
from engine.security.audit import AuditLog
from engine.store.database import reader
from engine.store.models import AuditEvent

log = logging.getLogger(__name__)

MAX_ITEMS = 500
Item = int | str


@dataclass(frozen=True)
class BulkJob:
    id: str
    action: str
    items: tuple[Item, ...]
    reason: str
    actor: str
    assignee: str | None = None


@dataclass(frozen=True)
class BulkProgress:
    """How far a job has gone: items done, items refused (with why), and whether it
    has ended (``stopped`` when its process stopped before the end)."""

    id: str
    action: str
    actor: str
    started_at: datetime
    total: int
    done: int
    refused: tuple[tuple[Item, str], ...]
    finished: bool
    stopped: bool = False

    @property
    def handled(self) -> int:
        return min(self.total, self.done + len(self.refused))

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.handled * 100 // self.total


class BulkWork(Protocol):
    """What a kind of bulk job does. ``name`` names its events (``<name>.bulk``);
    ``actions`` maps each action to the permission it takes, which is also the audit
    action each item's step records, naming the job in its detail's ``bulk``."""

    @property
    def name(self) -> str: ...
    @property
    def actions(self) -> Mapping[str, str]: ...
    @property
    def started_from(self) -> str:
        """Where a person starts one, for a job not found."""
        ...

    def check(self, session: Session, job: BulkJob) -> dict[str, Any]:
        """Refuse (Invalid) a job that cannot run; what its start event adds."""
        ...

    def act(self, job: BulkJob, item: Item) -> None:
        """One item, in its own transaction; Refused, Invalid or NotFound leave it be."""
        ...


class BulkJobs:
    """Starts, runs and reports ``work``'s bulk jobs over ``engine``'s store."""

    def __init__(self, work: BulkWork, engine: Engine, audit: AuditLog | None = None) -> None:
        self._work = work
        self._engine = engine
        self._reads = reader(engine)
        self._audit = audit or AuditLog(engine)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.target = f"{work.name}_bulk"
        self.started, self.refused, self.ended = (
            f"{work.name}.bulk", f"{work.name}.bulk_refused", f"{work.name}.bulk_done")

    def start(self, action: str, items: Sequence[Item], reason: str, actor: str,
              assignee: str | None = None) -> BulkJob:
        """Check the job and record its start; :meth:`run` or :meth:`launch` does it."""
        actions = self._work.actions
        if action not in actions:
            raise Invalid(f"no bulk action {action!r}", hint=f"Choose one of: "
                          f"{', '.join(actions)}")
        if not reason or not reason.strip():
            raise Invalid("a bulk action needs a reason",
                          hint="Say why all these items may be handled the same way")
        chosen = tuple(dict.fromkeys(items))
        if not chosen:
            raise Invalid("no items were chosen", hint="Tick the items to act on, or "
                          "act on a whole group")
        if len(chosen) > MAX_ITEMS:
            raise Invalid(f"{len(chosen)} items are more than one bulk action takes "
                          f"({MAX_ITEMS})", hint="Narrow the filter, or act in parts")
        job = BulkJob(uuid.uuid4().hex, action, chosen, reason, actor, assignee)
        with Session(self._engine) as session, session.begin():
            detail: dict[str, Any] = {"action": action, "items": list(chosen),
                                      "total": len(chosen), **self._work.check(session, job)}
            self._audit.record(session, actor, self.started, self.target, job.id, detail)
        return job

    def run(self, job: BulkJob, stop: threading.Event | None = None) -> None:
        """Act on each item in turn, then record the end; stops early when ``stop``
        is set, leaving the rest untouched."""
        done = refused = 0
        stopped = False
        for item in job.items:
            if stop is not None and stop.is_set():
                stopped = True
                break
            try:
                self._work.act(job, item)
                done += 1
            except (Refused, Invalid, NotFound) as refusal:
                self._note(job, self.refused, {"item": item, "reason": str(refusal)})
                refused += 1
        self._note(job, self.ended, {"done": done, "refused": refused, "stopped": stopped})

    def launch(self, job: BulkJob) -> None:
        """Run ``job`` on a thread of its own; :meth:`close` stops and waits for it."""
        thread = threading.Thread(target=self._run_logged, args=(job,), daemon=True,
                                  name=f"bulk-{job.id[:8]}")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the jobs running here after their current item, and wait for them."""
        self._stop.set()
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout)

    def progress(self, job_id: str) -> BulkProgress:
        """How far the job has gone, as any process sees it."""
        with Session(self._reads) as session:
            events = session.scalars(select(AuditEvent).where(
                AuditEvent.target_type == self.target, AuditEvent.target_id == job_id[:64])
                .order_by(AuditEvent.id)).all()
            if not events or events[0].action != self.started:
                raise NotFound(f"no bulk job {job_id}",
                               hint=f"Start one from {self._work.started_from}")
            start, detail = events[0], events[0].detail or {}
            refused = tuple((e.detail["item"], str(e.detail["reason"]))
                            for e in events if e.action == self.refused and e.detail)
            end = next((e for e in events if e.action == self.ended), None)
            if end is not None and end.detail:
                done = int(end.detail["done"])
            else:
                done = session.scalar(select(func.count()).where(
                    AuditEvent.action == self._work.actions[detail["action"]],
                    AuditEvent.id > start.id,
                    AuditEvent.detail["bulk"].as_string() == job_id)) or 0
        return BulkProgress(job_id, detail["action"], start.actor, start.at,
                            int(detail["total"]), done, refused, end is not None,
                            bool(end is not None and (end.detail or {}).get("stopped")))

    def _note(self, job: BulkJob, action: str, detail: dict[str, Any]) -> None:
        with Session(self._engine) as session, session.begin():
            self._audit.record(session, job.actor, action, self.target, job.id, detail)

    def _run_logged(self, job: BulkJob) -> None:
        try:
            self.run(job, self._stop)
        except Exception:  # the store went away: the job's page shows how far it got
            log.exception("bulk job failed", extra={"job": job.id, "action": job.action})
