"""The operator's throughput charts, read from the store's rollups (written by
engine.throughput_rollup), so they survive restarts and are the same on every engine:
for the last hour (a point a minute) or the last day (a point every 15 minutes), per
connection or overall, the messages received, rejected, routed, delivered and
failed, delivery latency p50/p99 and the outbox's queue depth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, case, func, select

from engine.errors import SwitchboardError
from engine.journal import now_utc
from engine.rollup_store import (
    ALL_CONNECTIONS,
    FIELDS,
    HOUR_ROWS,
    LATENCIES,
    MINUTE_ROWS,
    PERIODS,
)
from engine.store.database import reader
from engine.throughput_points import Period, Point, floor_to, points, total

Window = Literal["hour", "day"]
# A window: how far back, and the step between two points.
WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    "hour": (timedelta(hours=1), timedelta(minutes=1)),
    "day": (timedelta(days=1), timedelta(minutes=15)),
}


class UnknownWindow(SwitchboardError):
    """A chart window other than ``hour`` or ``day``."""


@dataclass(frozen=True)
class Series:
    """A chart's points, oldest first, the last one holding now (so still filling);
    ``total`` is the whole window as one point (its queue depth the deepest seen)."""

    window: str
    connection: str | None
    step: timedelta
    points: list[Point]
    total: Point


class Throughput:
    """Reads the rollups of one store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = reader(engine)

    def series(self, window: Window = "hour", connection: str | None = None,
               now: datetime | None = None) -> Series:
        """``window``'s points for ``connection`` (every connection when None)."""
        first, step, count = _span(window, now or now_utc())
        periods = self._periods(first, first + count * step, connection)
        return Series(window, connection, step, points(periods, first, step, count),
                      total(periods, first, step, count))

    def connections(self, window: Window = "day", now: datetime | None = None) -> list[str]:
        """The connections with anything counted in ``window``, by id."""
        first, step, count = _span(window, now or now_utc())
        with self._engine.connect() as connection:
            return list(connection.scalars(
                select(PERIODS.c.connection_id).distinct()
                .where(_within(PERIODS, first, first + count * step),
                       PERIODS.c.connection_id != ALL_CONNECTIONS)
                .order_by(PERIODS.c.connection_id)))

    def _periods(self, start: datetime, end: datetime,
                 connection: str | None) -> list[Period]:
        """The stored periods from ``start`` to ``end``, summed over the connections
        asked for, minute and hour rows alike."""
        # Overall, the queue depth is the whole outbox's; for one connection, its own,
        # or none in a period where the queue was sampled: then it was empty.
        own = ALL_CONNECTIONS if connection is None else connection
        depth = func.max(case((PERIODS.c.connection_id == own, PERIODS.c.queue_depth)))
        sampled = func.max(case((PERIODS.c.connection_id == ALL_CONNECTIONS,
                                 PERIODS.c.queue_depth)))
        counts = select(PERIODS.c.starts_at, *(func.sum(PERIODS.c[name]).label(name)
                                               for name in FIELDS),
                        depth.label("depth"), sampled.label("sampled"))
        latencies = select(LATENCIES.c.starts_at, LATENCIES.c.bucket,
                           func.sum(LATENCIES.c.deliveries))
        counts = counts.where(_within(PERIODS, start, end))
        latencies = latencies.where(_within(LATENCIES, start, end))
        if connection is not None:
            counts = counts.where(PERIODS.c.connection_id.in_([connection, ALL_CONNECTIONS]))
            latencies = latencies.where(LATENCIES.c.connection_id == connection)
        with self._engine.connect() as db:
            found = {row.starts_at: row for row in db.execute(
                counts.group_by(PERIODS.c.starts_at))}
            histograms: dict[datetime, dict[int, int]] = {}
            for starts_at, bucket, n in db.execute(
                    latencies.group_by(LATENCIES.c.starts_at, LATENCIES.c.bucket)):
                histograms.setdefault(starts_at, {})[bucket] = int(n)
        # A minute's latencies may be stored a flush before or after its counts.
        return [_period(starts_at, found.get(starts_at), histograms.get(starts_at, {}))
                for starts_at in found.keys() | histograms.keys()]


def _span(window: str, now: datetime) -> tuple[datetime, timedelta, int]:
    """The first point's start, the step and the number of points of ``window``."""
    if window not in WINDOWS:
        raise UnknownWindow(f"no chart window '{window}'", hint="Ask for hour or day")
    span, step = WINDOWS[window]
    count = span // step
    return floor_to(now, step) - (count - 1) * step, step, count


def _within(table: Any, start: datetime, end: datetime) -> Any:
    starts_at = table.c.starts_at
    return table.c.resolution.in_((MINUTE_ROWS, HOUR_ROWS)) & (starts_at >= start) & (
        starts_at < end)


def _period(starts_at: datetime, row: Any, latency: dict[int, int]) -> Period:
    if row is None:
        return Period(starts_at, latency=latency)
    depth = None if row.depth is None and row.sampled is None else int(row.depth or 0)
    return Period(starts_at, **{name: int(row._mapping[name] or 0) for name in FIELDS},
                  queue_depth=depth, latency=latency)
