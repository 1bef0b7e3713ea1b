"""Security events, counted from the audit trail: failed sign-ins, permission denials
and views of message content. Read from the store at each /metrics scrape or dashboard
refresh, so every web process over one store reports the same totals, and they survive
restarts (the trail is append-only, so each count only grows: a Prometheus counter).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from engine.store.database import reader
from engine.store.models import AuditEvent

# The audit action of each security event, by the name /metrics gives it.
EVENTS = {
    "sign_in_failure": "sign_in.failure",
    "access_denied": "access.denied",
    "content_view": "content.view",
    "bulk_content_view": "content.view.bulk",
    "break_glass_sign_in": "sign_in.break_glass",
}


def count_security_events(engine: Engine, since: datetime | None = None) -> dict[str, int]:
    """How many of each security event the trail holds (since ``since``, if given)."""
    query = (select(AuditEvent.action, func.count())
             .where(AuditEvent.action.in_(EVENTS.values())).group_by(AuditEvent.action))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    with reader(engine).connect() as connection:
        found = {action: count for action, count in connection.execute(query)}
    return {name: int(found.get(action, 0)) for name, action in EVENTS.items()}


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
            "views of message content", labels=["event"])
        for name, count in counts.items():
            family.add_metric([name], count)
        yield family
