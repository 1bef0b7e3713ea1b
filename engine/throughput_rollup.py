"""Throughput rollups, written as messages move. Each process counts in memory, per
connection and minute, the messages it received (and rejected), routed and failed,
the deliveries made and failed, and each delivery's latency; every few seconds, and
when it stops, it adds its counts to the store (engine.rollup_store), so the counts of
several engines add up and no ingest or claim transaction touches a shared row. An
engine's recorder also samples the outbox's queue depth when it flushes. Counts a
flush could not write are kept for the next one.

Ingest counts through ``count``; the pipeline and delivery workers through their
reports (``reporting`` wraps the report function they are given, in this process or,
for worker processes, where their reports arrive)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, literal, select

from engine.journal import now_utc
from engine.latency_histogram import bucket_of
from engine.outbox import BLOCKING
from engine.rollup_store import ALL_CONNECTIONS, FIELDS, MINUTE_ROWS, add
from engine.store.availability import error_name
from engine.store.database import reader
from engine.store.models import Delivery
from engine.throughput_points import floor_to

log = logging.getLogger("switchboard.throughput")
FLUSH_SECONDS = 5.0
MINUTE = timedelta(minutes=1)

Report = Callable[[str, str, float], None]
"""(metric, label, value), as engine.metrics.report takes it."""

# The reports that move a count, and the count they move: a failed delivery attempt
# is retried or dead-lettered.
_REPORTED = {"routed": "routed", "failed": "failed", "delivered": "delivered",
             "retried": "failed", "dead_lettered": "failed"}
_LATENCY_REPORT = "receive_to_delivered"


@dataclass
class _Tally:
    """One connection's minute, as far as this process has seen it."""

    counts: Counter[str] = field(default_factory=Counter)
    latency: Counter[int] = field(default_factory=Counter)
    queue_depth: int | None = None

    def add(self, other: _Tally) -> None:
        self.counts.update(other.counts)
        self.latency.update(other.latency)
        if other.queue_depth is not None:
            self.queue_depth = max(self.queue_depth or 0, other.queue_depth)


_Key = tuple[str, datetime]  # (connection, minute)


class ThroughputRecorder:
    """Counts per connection and minute, flushed to the store every ``interval``
    seconds by a thread of its own (started by ``start``, or by the first count) and
    by ``flush`` and ``close``. With ``sample_queue`` (an engine), each flush also
    records the outbox's queue depth, per destination and in all."""

    def __init__(self, engine: Engine, *, sample_queue: bool = False,
                 interval: float = FLUSH_SECONDS,
                 clock: Callable[[], datetime] = now_utc) -> None:
        self._engine = engine
        self._sample_queue = sample_queue
        self._interval = interval
        self._clock = clock
        self._tallies: dict[_Key, _Tally] = {}
        self._lock = threading.Lock()  # the tallies
        self._flushing = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- counting (any thread) -------------------------------------------------------

    def count(self, connection: str, name: str, n: int = 1,
              at: datetime | None = None) -> None:
        """Count ``n`` more ``name`` (one of engine.rollup_store.FIELDS) for
        ``connection`` in the minute of ``at`` (now)."""
        with self._lock:
            self._tally(connection, at).counts[name] += n
        self._ensure_flusher()

    def observe_delivery(self, connection: str, seconds: float,
                         at: datetime | None = None) -> None:
        """A delivery to ``connection`` that took ``seconds`` from receipt."""
        with self._lock:
            self._tally(connection, at).latency[bucket_of(seconds)] += 1
        self._ensure_flusher()

    def report(self, metric: str, label: str, value: float) -> None:
        """Take a worker's report (engine.metrics.report's arguments): the counts and
        latencies it moves, for the connection it names."""
        if metric == _LATENCY_REPORT:
            self.observe_delivery(label, value)
        elif metric in _REPORTED:
            self.count(label, _REPORTED[metric], int(value))

    def reporting(self, report: Report) -> Report:
        """``report``, and this recorder's ``report`` after it."""
        def both(metric: str, label: str, value: float) -> None:
            report(metric, label, value)
            self.report(metric, label, value)

        return both

    def _tally(self, connection: str, at: datetime | None) -> _Tally:
        key = (connection, floor_to(at or self._clock(), MINUTE))
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally()
        return tally

    # ---- flushing --------------------------------------------------------------------

    def flush(self) -> None:
        """Add what was counted since the last flush to the store (with a sample of the
        queue, in an engine); raises when the store cannot take it, and keeps the
        counts for the next flush."""
        with self._flushing:
            with self._lock:
                taken, self._tallies = self._tallies, {}
            try:
                if self._sample_queue:
                    self._sample(taken)
                if taken:
                    periods, latencies = _rows(taken)
                    with self._engine.begin() as connection:
                        add(connection, periods, latencies)
            except BaseException:
                self._put_back(taken)
                raise

    def start(self) -> None:
        """Flush every ``interval`` seconds from now until ``close``."""
        self._ensure_flusher(force=True)

    def close(self) -> None:
        """Stop flushing on a schedule, and flush what is left (if the store takes it:
        else those counts are lost, and only those)."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
        try:
            self.flush()
        except Exception as error:
            log.warning("the last throughput counts could not be stored",
                        extra={"error": error_name(error)})

    def _ensure_flusher(self, force: bool = False) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None and (force or self._tallies):
                self._thread = threading.Thread(target=self._flush_until_stopped,
                                                name="throughput-rollup", daemon=True)
                self._thread.start()

    def _flush_until_stopped(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception as error:  # the store is away: the next flush tries again
                log.warning("throughput counts not stored yet; kept for the next flush",
                            extra={"error": error_name(error)})

    def _sample(self, taken: dict[_Key, _Tally]) -> None:
        minute = floor_to(self._clock(), MINUTE)
        depths = outbox_depths(self._engine)
        depths[ALL_CONNECTIONS] = sum(depths.values())
        for connection, depth in depths.items():
            tally = taken.setdefault((connection, minute), _Tally())
            tally.queue_depth = max(tally.queue_depth or 0, depth)

    def _put_back(self, taken: dict[_Key, _Tally]) -> None:
        with self._lock:
            for key, tally in taken.items():
                self._tallies.setdefault(key, _Tally()).add(tally)


def outbox_depths(engine: Engine) -> dict[str, int]:
    """Deliveries not ended yet (pending, retrying, in flight or held), by destination."""
    # The states written into the SQL, as ix_deliveries_blocking's WHERE names them.
    waiting = Delivery.status.in_([literal(state, literal_execute=True) for state in BLOCKING])
    with reader(engine).connect() as connection:
        rows = connection.execute(select(Delivery.destination, func.count())
                                  .where(waiting).group_by(Delivery.destination))
        return {destination: int(count) for destination, count in rows}


def _rows(taken: dict[_Key, _Tally]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    periods: list[dict[str, Any]] = []
    latencies: list[dict[str, Any]] = []
    for (connection, minute), tally in taken.items():
        key = {"connection_id": connection, "resolution": MINUTE_ROWS, "starts_at": minute}
        periods.append({**key, **{name: tally.counts[name] for name in FIELDS},
                        "queue_depth": tally.queue_depth})
        latencies.extend({**key, "bucket": bucket, "deliveries": n}
                         for bucket, n in tally.latency.items() if n)
    return periods, latencies
