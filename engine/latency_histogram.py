"""Delivery latency kept as counts in fixed, log-spaced buckets: counts add up across
minutes, connections and engines, so p50 and p99 of any merged period come from its
rows, without the latencies themselves. Pure: no I/O.

Bucket 0 holds latencies up to 1 ms; bucket ``i`` those above ``UPPER_MS[i - 1]`` up to
``UPPER_MS[i]``, each bound the square root of two times the one before, up to 2 ** 26
ms (about 18.6 h); the last bucket holds everything longer. An estimate lies in the
bucket that holds the exact value, so it is off by at most that ratio.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping

UPPER_MS: tuple[float, ...] = tuple(2 ** (i / 2) for i in range(53))
BUCKETS = len(UPPER_MS) + 1

Histogram = Mapping[int, int]
"""Bucket index -> how many latencies fell in it."""


def bucket_of(seconds: float) -> int:
    """The bucket a latency of ``seconds`` falls in (a negative one, from a clock that
    stepped back, in the first)."""
    return bisect.bisect_left(UPPER_MS, seconds * 1000)


def merged(histograms: Iterable[Histogram]) -> dict[int, int]:
    """One histogram of everything ``histograms`` counted."""
    total: Counter[int] = Counter()
    for histogram in histograms:
        total.update(histogram)
    return dict(total)


def percentile(histogram: Histogram, q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) in milliseconds, or None when nothing was
    counted: the nearest-rank latency, placed within its bucket as if the bucket's
    latencies were spread evenly over it (on a log scale; bucket 0 linearly), each at
    the middle of its share."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    before = 0
    for bucket in sorted(b for b, n in histogram.items() if n > 0):
        count = histogram[bucket]
        if before + count >= rank:
            return _within(bucket, (rank - before - 0.5) / count)
        before += count
    raise AssertionError("the ranks run out before the total")  # pragma: no cover


def _within(bucket: int, fraction: float) -> float:
    if bucket == 0:
        return UPPER_MS[0] * fraction
    lower = UPPER_MS[bucket - 1]
    if bucket >= len(UPPER_MS):  # the open bucket: at least its lower bound, no more known
        return lower
    return lower * math.pow(UPPER_MS[bucket] / lower, fraction)
