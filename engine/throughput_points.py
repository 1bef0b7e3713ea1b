"""Throughput rollup periods (a connection's minute or hour, as stored) merged into the
points of a chart: counts add up, the queue depth is the deepest any period saw, and
p50/p99 come from the periods' latency histograms merged. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.latency_histogram import Histogram, merged, percentile

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """One stored period's figures, summed over the connections asked for.
    ``queue_depth`` is None when nothing sampled the queue in it."""

    starts_at: datetime
    received: int = 0
    routed: int = 0
    delivered: int = 0
    failed: int = 0
    rejected: int = 0
    queue_depth: int | None = None
    latency: Histogram = field(default_factory=dict)


@dataclass(frozen=True)
class Point:
    """One point of a chart, from ``start`` for one step: messages received (rejected
    among them), routed, delivered and failed (failed in the pipeline, or delivery
    attempts that failed); delivery latency (receipt to delivered) p50 and p99 in
    milliseconds, None with no delivery; the deepest outbox queue seen, None when
    nothing sampled it."""

    start: datetime
    received: int = 0
    routed: int = 0
    delivered: int = 0
    failed: int = 0
    rejected: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    queue_depth: int | None = None


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """The start, in UTC, of the ``step`` (counted from the epoch) that holds ``moment``."""
    return _EPOCH + ((moment - _EPOCH) // step) * step


def points(periods: Iterable[Period], first: datetime, step: timedelta,
           count: int) -> list[Point]:
    """``count`` points of ``step`` from ``first``, each merging the periods that start
    in it; periods outside them are left out."""
    placed: list[list[Period]] = [[] for _ in range(count)]
    for period in periods:
        index = (period.starts_at - first) // step
        if 0 <= index < count:
            placed[index].append(period)
    return [_point(first + n * step, part) for n, part in enumerate(placed)]


def total(periods: Iterable[Period], first: datetime, step: timedelta, count: int) -> Point:
    """The whole window of ``points(periods, first, step, count)`` as one point."""
    end = first + count * step
    return _point(first, [p for p in periods if first <= p.starts_at < end])


def _point(start: datetime, periods: Sequence[Period]) -> Point:
    latency = merged(p.latency for p in periods)
    depths = [p.queue_depth for p in periods if p.queue_depth is not None]
    return Point(
        start,
        received=sum(p.received for p in periods), routed=sum(p.routed for p in periods),
        delivered=sum(p.delivered for p in periods), failed=sum(p.failed for p in periods),
        rejected=sum(p.rejected for p in periods),
        p50_ms=percentile(latency, 0.5), p99_ms=percentile(latency, 0.99),
        queue_depth=max(depths) if depths else None)
