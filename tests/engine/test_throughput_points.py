"""Stored rollup periods merged into chart points (engine.throughput_points): counts
add up, the queue depth is the deepest seen, and p50/p99 come from the merged
latency histograms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.latency_histogram import percentile
from engine.throughput_points import Period, Point, floor_to, points, total

T0 = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
MINUTE, QUARTER, HOUR = timedelta(minutes=1), timedelta(minutes=15), timedelta(hours=1)


@pytest.mark.parametrize(("moment", "step", "floor"), [
    (T0, MINUTE, T0),
    (T0 + timedelta(seconds=59.999), MINUTE, T0),
    (T0 + timedelta(minutes=14, seconds=59), QUARTER, T0),
    (T0 + timedelta(minutes=15), QUARTER, T0 + QUARTER),
    (T0 + timedelta(minutes=59), HOUR, T0),
    # Another zone names the same instant: the floor is in UTC.
    (datetime(2026, 12, 8, 5, 31, tzinfo=UTC).astimezone(
        timezone(timedelta(hours=-4, minutes=-30))), HOUR, datetime(2026, 12, 8, 5, 0, tzinfo=UTC)),
])
def test_a_moment_floors_to_the_start_of_its_step(moment, step, floor):
    found = floor_to(moment, step)
    assert found == floor
    assert found.tzinfo == UTC


def test_an_empty_window_is_every_point_at_zero_with_nothing_measured():
    found = points([], T0, QUARTER, 4)
    assert [p.start for p in found] == [T0 + n * QUARTER for n in range(4)]
    assert set(found) == {Point(p.start) for p in found}
    assert found[0] == Point(T0, 0, 0, 0, 0, 0, None, None, None)


@pytest.mark.parametrize(("periods", "expected"), [
    # Minutes of one quarter hour add up in its point.
    ([Period(T0, received=3, routed=2), Period(T0 + 14 * MINUTE, received=4, failed=1)],
     {0: Point(T0, received=7, routed=2, failed=1)}),
    # The next quarter starts a new point.
    ([Period(T0 + 14 * MINUTE, delivered=1), Period(T0 + QUARTER, delivered=5)],
     {0: Point(T0, delivered=1), 1: Point(T0 + QUARTER, delivered=5)}),
    # The queue depth of a point is the deepest its minutes saw; unsampled minutes
    # say nothing, not zero.
    ([Period(T0, queue_depth=4), Period(T0 + MINUTE, queue_depth=9),
      Period(T0 + 2 * MINUTE, rejected=1)],
     {0: Point(T0, rejected=1, queue_depth=9)}),
    ([Period(T0, queue_depth=0)], {0: Point(T0, queue_depth=0)}),
    # An hour row (thinned) lands in the point that holds its start.
    ([Period(T0 + HOUR, received=60)],
     {4: Point(T0 + HOUR, received=60)}),
    # Periods outside the window are left out.
    ([Period(T0 - MINUTE, received=1), Period(T0 + 4 * QUARTER + HOUR, received=1)], {}),
])
def test_periods_merge_into_their_points(periods, expected):
    found = points(periods, T0, QUARTER, 8)
    assert {n: p for n, p in enumerate(found) if p != Point(p.start)} == expected


@pytest.mark.parametrize(("latencies", "p50", "p99"), [
    ([{}], None, None),
    ([{14: 1}], {14: 1}, {14: 1}),
    # Two minutes' histograms merge before the percentiles are taken: neither minute's
    # own p99 is the quarter's.
    ([{14: 60}, {20: 1}, {14: 39}], {14: 99, 20: 1}, {14: 99, 20: 1}),
    ([{14: 98}, {30: 2}], {14: 98, 30: 2}, {14: 98, 30: 2}),
])
def test_a_point_takes_its_percentiles_from_the_merged_histogram(latencies, p50, p99):
    periods = [Period(T0 + n * MINUTE, delivered=sum(h.values()), latency=h)
               for n, h in enumerate(latencies)]
    point = points(periods, T0, QUARTER, 1)[0]
    assert point.p50_ms == (None if p50 is None else percentile(p50, 0.5))
    assert point.p99_ms == (None if p99 is None else percentile(p99, 0.99))


def test_the_total_merges_the_whole_window():
    periods = [Period(T0, received=3, delivered=2, queue_depth=5, latency={14: 2}),
               Period(T0 + 3 * QUARTER, received=1, delivered=1, failed=2, latency={30: 1}),
               Period(T0 + HOUR, received=100)]  # past the window's end
    assert total(periods, T0, QUARTER, 4) == Point(
        T0, received=4, delivered=3, failed=2, queue_depth=5,
        p50_ms=percentile({14: 2, 30: 1}, 0.5), p99_ms=percentile({14: 2, 30: 1}, 0.99))
