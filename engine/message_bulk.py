"""Bulk actions in the message browser: reprocess many messages with one reason, each
routed again exactly as a single reprocess does (engine.reroute), as a bulk job
(engine.bulk_jobs) whose events are ``message.bulk``, ``message.bulk_refused`` and
``message.bulk_done``. (Retrying the failed deliveries of many messages is a bulk
retry of their exception items: engine.exception_bulk.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.bulk_jobs import BulkJob, BulkJobs, Item
from engine.reroute import Reroute
from engine.security.audit import AuditLog

ACTIONS = {"reprocess": "message.reprocess"}
"""What a bulk job may do, and the permission (engine.security.permissions) it takes."""


class MessageWork:
    name = "message"
    actions = ACTIONS
    started_from = "the message browser"

    def __init__(self, reroute: Reroute) -> None:
        self._reroute = reroute

    def check(self, session: Session, job: BulkJob) -> dict[str, Any]:
        return {}

    def act(self, job: BulkJob, item: Item) -> None:
        self._reroute.reprocess(str(item), job.actor, job.reason, bulk=job.id)


class MessageBulk(BulkJobs):
    """Bulk jobs over the messages ``reroute`` reprocesses."""

    def __init__(self, reroute: Reroute, engine: Engine, audit: AuditLog | None = None) -> None:
        super().__init__(MessageWork(reroute), engine, audit)
