"""How far behind each connection is, read from the store when /metrics is scraped:
the age of the oldest message its feed sent that is not routed yet, the age of the
oldest delivery to it still waiting, and how many of its messages are isolated as
poison (failed, their exception item still open). Read from the store, not from one
process's memory, so every engine and web process over one store says the same.

A destination that is down shows here (its oldest delivery ages), not in /readyz.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from engine.journal import now_utc
from engine.store.database import reader
from engine.store.models import Delivery, ExceptionItem, JournalEntry

UNROUTED = ("received", "routing")
WAITING_DELIVERY = ("pending", "retrying", "in_flight")
OPEN_EXCEPTION = ("open", "assigned")


@dataclass
class Backlog:
    """Per connection: when its oldest unrouted message arrived, when its oldest
    waiting delivery was made, and how many of its messages are isolated as poison."""

    oldest_unrouted: dict[str, datetime] = field(default_factory=dict)
    oldest_waiting_delivery: dict[str, datetime] = field(default_factory=dict)
    poison: dict[str, int] = field(default_factory=dict)


def read_backlog(engine: Engine) -> Backlog:
    journal, deliveries = JournalEntry, Delivery
    open_item = (select(ExceptionItem.id).where(
        ExceptionItem.journal_id == journal.id, ExceptionItem.status.in_(OPEN_EXCEPTION))
        .exists())
    with reader(engine).connect() as connection:
        return Backlog(
            dict(connection.execute(
                select(journal.source, func.min(journal.received_at))
                .where(journal.status.in_(UNROUTED)).group_by(journal.source)).all()),
            dict(connection.execute(
                select(deliveries.destination, func.min(deliveries.created_at))
                .where(deliveries.status.in_(WAITING_DELIVERY))
                .group_by(deliveries.destination)).all()),
            dict(connection.execute(
                select(journal.source, func.count())
                .where(journal.status == "failed", open_item)
                .group_by(journal.source)).all()),
        )


class BacklogCollector(Collector):
    """The backlog gauges for ``connections`` (every connection in the catalog gets a
    sample, 0 when nothing waits), read from ``engine`` at each scrape. Nothing is
    reported while the store cannot be read: /readyz says why."""

    def __init__(self, engine: Engine, connections: Iterable[str]) -> None:
        self._engine = engine
        self._connections = sorted(connections)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            backlog = read_backlog(self._engine)
        except SQLAlchemyError:
            return
        moment = now_utc()
        names = sorted({*self._connections, *backlog.oldest_unrouted,
                        *backlog.oldest_waiting_delivery, *backlog.poison})

        def age(since: dict[str, datetime], name: str) -> float:
            started = since.get(name)
            return 0.0 if started is None else max(0.0, (moment - started).total_seconds())

        unrouted = GaugeMetricFamily(
            "switchboard_oldest_unrouted_age_seconds",
            "Age of the oldest message from this connection not yet routed",
            labels=["connection"])
        waiting = GaugeMetricFamily(
            "switchboard_oldest_pending_delivery_age_seconds",
            "Age of the oldest delivery to this connection not yet delivered",
            labels=["connection"])
        poison = GaugeMetricFamily(
            "switchboard_poison_messages",
            "Messages from this connection isolated as failed, their exception open",
            labels=["connection"])
        for name in names:
            unrouted.add_metric([name], age(backlog.oldest_unrouted, name))
            waiting.add_metric([name], age(backlog.oldest_waiting_delivery, name))
            poison.add_metric([name], float(backlog.poison.get(name, 0)))
        yield from (unrouted, waiting, poison)

