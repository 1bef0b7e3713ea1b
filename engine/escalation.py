"""Escalation: an exception item still open when its policy's delay has passed is
escalated once. The role the policy names gets a task in the ``escalations`` queue,
with the catalog's technical owner to page when the policy says so, and the
escalation is audited. Run every ``interval`` seconds by APScheduler in the engine."""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.journal import now_utc
from engine.rule_versions import SYSTEM, RuleSetCache
from engine.rules.exception_policy import ESCALATION_QUEUE
from engine.security.audit import AuditLog
from engine.store.models import ExceptionItem, Task

log = logging.getLogger("switchboard.escalation")
QUEUE = ESCALATION_QUEUE
OPEN = ("open", "assigned")


def escalate_due(engine: Engine, rule_sets: RuleSetCache, now: datetime | None = None,
                 limit: int = 100) -> int:
    """Escalate the open items whose time has come; returns how many."""
    now = now or now_utc()
    connections = rule_sets.current().rule_set.connections
    audit = AuditLog(engine)
    with Session(engine) as session, session.begin():
        due = session.scalars(
            select(ExceptionItem).where(
                ExceptionItem.status.in_(OPEN), ExceptionItem.escalated_at.is_(None),
                ExceptionItem.escalate_at <= now)
            .order_by(ExceptionItem.escalate_at).limit(limit)
            # Several engines run this job on one PostgreSQL: each item escalates once.
            .with_for_update(skip_locked=True)).all()
        for item in due:
            item.escalated_at = now
            owner = connections.get(item.connection_id or "")
            page = bool((item.detail or {}).get("page_technical_owner"))
            technical = owner.technical_owner if owner and page else None
            session.add(Task(
                journal_id=item.journal_id, queue=QUEUE, kind="escalation", mode="notify",
                status="open", assignee=None, due_at=None, created_at=now,
                payload={"exception_id": item.id, "notify_role": item.escalate_to,
                         "connection": item.connection_id, "error_class": item.error_class,
                         "page": None if technical is None else {
                             "name": technical.name, "pager": technical.pager,
                             "phone": technical.phone}}))
            audit.record(session, SYSTEM, "exception.escalated", "exception", str(item.id),
                         {"notify_role": item.escalate_to, "paged": technical is not None})
            log.warning("exception escalated", extra={
                "exception_id": item.id, "connection": item.connection_id,
                "notify_role": item.escalate_to})
        return len(due)


class Escalator:
    """The escalation job on a background scheduler of its own."""

    def __init__(self, engine: Engine, interval: float = 30.0) -> None:
        self._engine = engine
        self._interval = interval
        self._rule_sets = RuleSetCache(engine)
        self._scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(self.run, "interval", seconds=self._interval, max_instances=1,
                          coalesce=True, id="escalation")
        scheduler.start()
        self._scheduler = scheduler

    def run(self) -> None:
        try:
            escalate_due(self._engine, self._rule_sets)
        except Exception:  # the store is down: the next run tries again
            log.exception("escalation pass failed")

    def stop(self) -> None:
        if self._scheduler is not None:
            scheduler, self._scheduler = self._scheduler, None
            scheduler.shutdown(wait=True)
