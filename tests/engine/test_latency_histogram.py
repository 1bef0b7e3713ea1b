"""Delivery latency in fixed log-spaced buckets (engine.latency_histogram): which bucket
a latency falls in, and p50/p99 estimated from merged counts, within the bucket that
holds the exact value."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.latency_histogram import BUCKETS, UPPER_MS, bucket_of, merged, percentile


@pytest.mark.parametrize(("seconds", "bucket"), [
    (0.0, 0),
    (0.0005, 0),
    (0.001, 0),  # 1 ms is bucket 0's upper bound, inclusive
    (0.0011, 1),
    (0.002, 2),  # 2 ms: bucket 2 ends at 2 ** (2 / 2)
    (0.0021, 3),
    (0.1, 14),  # 100 ms: between 2 ** 6.5 (90.5) and 2 ** 7 (128)
    (1.0, 20),  # 1 s: between 2 ** 9.5 (724) and 2 ** 10 (1024)
    (60.0, 32),  # a minute: between 2 ** 15.5 and 2 ** 16 ms
    (3600.0, 44),  # an hour: between 2 ** 21.5 and 2 ** 22 ms
    (50_000.0, BUCKETS - 2),  # below the last bound, 2 ** 26 ms (about 18.6 h)
    (86_400.0 * 7, BUCKETS - 1),  # a week: the open bucket at the end
    (-0.5, 0),  # a clock that stepped back: no latency, not an error
])
def test_a_latency_falls_in_the_bucket_whose_bounds_hold_it(seconds, bucket):
    assert bucket_of(seconds) == bucket


def test_each_bound_is_the_square_root_of_two_times_the_one_before():
    assert UPPER_MS[0] == 1.0
    assert len(UPPER_MS) == BUCKETS - 1
    for lower, upper in itertools.pairwise(UPPER_MS):
        assert upper / lower == pytest.approx(math.sqrt(2))


@pytest.mark.parametrize(("counts", "q", "expected"), [
    ({}, 0.5, None),  # nothing delivered: no latency to give
    ({5: 0}, 0.99, None),
    ({0: 1}, 0.5, 0.5),  # bucket 0 is linear from 0 to 1 ms: the middle
    ({2: 1}, 0.5, 2 ** 0.75),  # one delivery: the bucket's geometric middle
    ({2: 4}, 0.5, 2 ** (0.5 + 0.5 * 1.5 / 4)),  # rank 2 of 4: 1.5/4 of the way up
    ({2: 1, 10: 1}, 0.5, 2 ** 0.75),  # nearest rank: p50 of two is the first
    ({2: 1, 10: 1}, 0.99, 2 ** 4.75),
    ({14: 99, 30: 1}, 0.99, 2 ** (6.5 + 0.5 * 98.5 / 99)),  # the 99th of 100 is not the tail
    ({14: 98, 30: 2}, 0.99, 2 ** (14.5 + 0.5 * 0.5 / 2)),  # two slow of 100: p99 is slow
    ({BUCKETS - 1: 3}, 0.5, 2 ** 26),  # past the last bound: at least that much
])
def test_a_percentile_comes_from_the_counts(counts, q, expected):
    found = percentile(counts, q)
    if expected is None:
        assert found is None
    else:
        assert found == pytest.approx(expected)


def test_histograms_merge_by_adding_their_counts():
    assert merged([{1: 2, 5: 1}, {}, {5: 3, 7: 1}]) == {1: 2, 5: 4, 7: 1}


# Up to the last bound: past it an estimate says only "at least 2 ** 26 ms".
latencies = st.lists(st.floats(min_value=0.0, max_value=60_000.0, allow_nan=False),
                     min_size=1, max_size=300)


@given(latencies, latencies, st.sampled_from([0.5, 0.9, 0.99]))
def test_merged_estimates_fall_in_the_bucket_of_the_exact_percentile(first, second, q):
    """Whatever the split into rows (minutes, engines), the merged estimate lies in the
    bucket that holds the exact nearest-rank percentile of all the latencies: off by at
    most a factor of the square root of two."""
    histograms = [{}, {}]
    for histogram, part in zip(histograms, (first, second), strict=True):
        for seconds in part:
            bucket = bucket_of(seconds)
            histogram[bucket] = histogram.get(bucket, 0) + 1
    every = sorted(first + second)
    exact = every[max(1, math.ceil(q * len(every))) - 1]
    estimate = percentile(merged(histograms), q)
    assert estimate is not None
    assert bucket_of(estimate / 1000) == bucket_of(exact)
