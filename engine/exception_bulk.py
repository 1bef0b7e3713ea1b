"""Bulk actions on the exception queue: one action (retry, resolve or assign) with one
reason over many items, each item acted on, checked and audited exactly as the single
action is (engine.exception_queue), one transaction per item.

A job is kept in the audit trail, which every web process shares, rather than in a
table of its own: an ``exception.bulk`` event (target ``exception_bulk``, the job's
id) names the action and the items; each item's own event names the job; an item the
queue refuses gets an ``exception.bulk_refused`` event of the job saying why; and
``exception.bulk_done`` ends it with its counts. So any process can tell how far a job
has gone from the very events that prove what was done, and nothing else has to be
kept in step with them. The reason is kept on each item, never in the trail (free text
may name a patient). A job its process stops midway ends as stopped, the items it had
not reached still open; a process that dies leaves it without an end, and its page
says how far it got.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from engine.exception_queue import ExceptionQueue, InBulk
from engine.queues import Invalid, NotFound, Refused
from engine.security.audit import AuditLog
from engine.security.permissions import check_assignee, roles_for
from engine.store.database import reader
from engine.store.models import AuditEvent

log = logging.getLogger(__name__)

ACTIONS = {"retry": "exception.retry", "resolve": "exception.resolve",
           "assign": "exception.assign"}
"""What a bulk job may do, and the permission (engine.security.permissions) it takes."""
MAX_ITEMS = 500
JOB = "exception_bulk"
STARTED, REFUSED, DONE = "exception.bulk", "exception.bulk_refused", "exception.bulk_done"
_ASSIGNABLE = roles_for("exception.resolve", "exception.retry", "exception.reprocess",
                        "exception.skip")


@dataclass(frozen=True)
class BulkJob:
    id: str
    action: str
    items: tuple[int, ...]
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
    refused: tuple[tuple[int, str], ...]
    finished: bool
    stopped: bool = False

    @property
    def handled(self) -> int:
        return min(self.total, self.done + len(self.refused))

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.handled * 100 // self.total


class BulkActions:
    """Starts, runs and reports bulk jobs over ``queue``'s store."""

    def __init__(self, queue: ExceptionQueue, engine: Engine,
                 audit: AuditLog | None = None) -> None:
        self._queue = queue
        self._engine = engine
        self._reads = reader(engine)
        self._audit = audit or AuditLog(engine)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, action: str, item_ids: Sequence[int], reason: str, actor: str,
              assignee: str | None = None) -> BulkJob:
        """Check the job and record its start; :meth:`run` or :meth:`launch` does it."""
        if action not in ACTIONS:
            raise Invalid(f"no bulk action {action!r}", hint=f"Choose one of: "
                          f"{', '.join(ACTIONS)}")
        if not reason or not reason.strip():
            raise Invalid("a bulk action needs a reason",
                          hint="Say why all these items may be handled the same way")
        items = tuple(dict.fromkeys(item_ids))
        if not items:
            raise Invalid("no items were chosen", hint="Tick the items to act on, or "
                          "act on a whole group")
        if len(items) > MAX_ITEMS:
            raise Invalid(f"{len(items)} items are more than one bulk action takes "
                          f"({MAX_ITEMS})", hint="Narrow the filter, or act in parts")
        job = BulkJob(uuid.uuid4().hex, action, items, reason, actor,
                      assignee if action == "assign" else None)
        with Session(self._engine) as session, session.begin():
            if action == "assign":
                check_assignee(session, assignee or "", _ASSIGNABLE)
            detail: dict[str, Any] = {"action": action, "items": list(items),
                                      "total": len(items)}
            if job.assignee:
                detail["assignee"] = job.assignee
            self._audit.record(session, actor, STARTED, JOB, job.id, detail)
        return job

    def run(self, job: BulkJob, stop: threading.Event | None = None) -> None:
        """Act on each item in turn, then record the end; stops early when ``stop``
        is set, leaving the rest untouched."""
        step = InBulk(job.id, job.reason)
        done = refused = 0
        stopped = False
        for item_id in job.items:
            if stop is not None and stop.is_set():
                stopped = True
                break
            try:
                self._act(job, item_id, step)
                done += 1
            except (Refused, Invalid, NotFound) as refusal:
                self._note(job, REFUSED, {"item": item_id, "reason": str(refusal)})
                refused += 1
        self._note(job, DONE, {"done": done, "refused": refused, "stopped": stopped})

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
                AuditEvent.target_type == JOB, AuditEvent.target_id == job_id[:64])
                .order_by(AuditEvent.id)).all()
            if not events or events[0].action != STARTED:
                raise NotFound(f"no bulk job {job_id}",
                               hint="Start one from the exception queue")
            start, detail = events[0], events[0].detail or {}
            refused = tuple((int(e.detail["item"]), str(e.detail["reason"]))
                            for e in events if e.action == REFUSED and e.detail)
            end = next((e for e in events if e.action == DONE), None)
            if end is not None and end.detail:
                done = int(end.detail["done"])
            else:
                done = session.scalar(select(func.count()).where(
                    AuditEvent.action == ACTIONS[detail["action"]],
                    AuditEvent.id > start.id,
                    AuditEvent.detail["bulk"].as_string() == job_id)) or 0
        return BulkProgress(job_id, detail["action"], start.actor, start.at,
                            int(detail["total"]), done, refused, end is not None,
                            bool(end is not None and (end.detail or {}).get("stopped")))

    def _act(self, job: BulkJob, item_id: int, step: InBulk) -> None:
        if job.action == "retry":
            self._queue.retry(item_id, job.actor, bulk=step)
        elif job.action == "resolve":
            self._queue.resolve(item_id, job.reason, job.actor, bulk=step)
        else:
            self._queue.assign(item_id, job.assignee or "", job.actor, bulk=step)

    def _note(self, job: BulkJob, action: str, detail: dict[str, Any]) -> None:
        with Session(self._engine) as session, session.begin():
            self._audit.record(session, job.actor, action, JOB, job.id, detail)

    def _run_logged(self, job: BulkJob) -> None:
        try:
            self.run(job, self._stop)
        except Exception:  # the store went away: the job's page shows how far it got
            log.exception("bulk job failed", extra={"job": job.id, "action": job.action})
