"""Security events, counted from the audit trail: failed sign-ins, permission denials
and views of patient data. Read from the store at each /metrics scrape or dashboard
refresh, so every web process over one store reports the same totals, and they survive
restarts (the trail is append-only, so each count only grows: a Prometheus counter).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Final

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from engine.store.database import reader
from engine.store.models import AuditEvent

CONTENT_VIEWS: Final = frozenset({"content.view", "task.view"})
"""The audit actions that showed someone patient data: a message's content (the
console's content pages, the exception editor) and a task's page with its payload
(engine.work_queue). The one definition /metrics, the dashboard and the audit log's
"content views" all count by."""

EVENTS: Final[Mapping[str, frozenset[str]]] = {
    "sign_in_failure": frozenset({"sign_in.failure"}),
    "access_denied": frozenset({"access.denied"}),
    "content_view": CONTENT_VIEWS,
    "bulk_content_view": frozenset({"content.view.bulk"}),
    "break_glass_sign_in": frozenset({"sign_in.break_glass"}),
}
"""The audit actions of each security event, by the name /metrics gives it."""


def count_security_events(engine: Engine, since: datetime | None = None) -> dict[str, int]:
    """How many of each security event the trail holds (since ``since``, if given)."""
    actions = sorted(set().union(*EVENTS.values()))
    query = (select(AuditEvent.action, func.count())
             .where(AuditEvent.action.in_(actions)).group_by(AuditEvent.action))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    with reader(engine).connect() as connection:
        found = {action: count for action, count in connection.execute(query)}
    return {name: sum(int(found.get(action, 0)) for action in actions_of)
            for name, actions_of in EVENTS.items()}


class SecurityEventCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[CounterMetricFamily]:
        try:
            counts = count_security_events(self._engine)
        except SQLAlchemyError:
            return  # the store is down: /readyz says so
        family = CounterMetricFamily(
            "switchboard_security_events",
            "Security events in the audit trail: failed sign-ins, permission denials, "
            "views of patient data", labels=["event"])
        for name, count in counts.items():
            family.add_metric([name], count)
        yield family
