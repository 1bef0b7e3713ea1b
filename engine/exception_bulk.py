"""Bulk actions on the exception queue: retry, resolve or assign many items with one
reason, each item acted on, checked and audited exactly as the single action is
(engine.exception_queue), as a bulk job (engine.bulk_jobs) whose events are
``exception.bulk``, ``exception.bulk_refused`` and ``exception.bulk_done``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.bulk_jobs import MAX_ITEMS, BulkJob, BulkJobs, BulkProgress, Item
from engine.exception_queue import ExceptionQueue, InBulk
from engine.security.audit import AuditLog
from engine.security.permissions import check_assignee, roles_for

__all__ = ["ACTIONS", "MAX_ITEMS", "BulkActions", "BulkJob", "BulkProgress"]

ACTIONS = {"retry": "exception.retry", "resolve": "exception.resolve",
           "assign": "exception.assign"}
"""What a bulk job may do, and the permission (engine.security.permissions) it takes."""
_ASSIGNABLE = roles_for("exception.resolve", "exception.retry", "exception.reprocess",
                        "exception.skip")


class ExceptionWork:
    name = "exception"
    actions = ACTIONS
    started_from = "the exception queue"

    def __init__(self, queue: ExceptionQueue) -> None:
        self._queue = queue

    def check(self, session: Session, job: BulkJob) -> dict[str, Any]:
        if job.action != "assign":
            return {}
        check_assignee(session, job.assignee or "", _ASSIGNABLE)
        return {"assignee": job.assignee}

    def act(self, job: BulkJob, item: Item) -> None:
        step, item_id = InBulk(job.id, job.reason), int(item)
        if job.action == "retry":
            self._queue.retry(item_id, job.actor, bulk=step)
        elif job.action == "resolve":
            self._queue.resolve(item_id, job.reason, job.actor, bulk=step)
        else:
            self._queue.assign(item_id, job.assignee or "", job.actor, bulk=step)


class BulkActions(BulkJobs):
    """Bulk jobs over ``queue``'s items."""

    def __init__(self, queue: ExceptionQueue, engine: Engine,
                 audit: AuditLog | None = None) -> None:
        super().__init__(ExceptionWork(queue), engine, audit)
        self._exceptions = queue

    def start(self, action: str, items: Sequence[Item], reason: str, actor: str,
              assignee: str | None = None) -> BulkJob:
        """A retry goes oldest first whatever order the items were chosen in, so each
        patient's messages arrive in order (as recovery procedures ask)."""
        if action == "retry" and len(set(items)) <= MAX_ITEMS:
            items = self._exceptions.oldest_first(int(item) for item in items)
        return super().start(action, items, reason, actor,
                             assignee if action == "assign" else None)
