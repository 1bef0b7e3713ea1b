"""Thinning the throughput rollups by age (engine.rollup_thinning) on SQLite and
PostgreSQL: old minutes become hours with the same totals and percentiles, old hours go,
and thinning again, late, or from two engines at once counts nothing twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from engine.journal import now_utc
from engine.rollup_store import ALL_CONNECTIONS
from engine.rollup_thinning import Thinned, thin
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from engine.store.models import ConnectionMinute, ConnectionMinuteLatency
from engine.throughput import Throughput
from engine.throughput_points import floor_to
from engine.throughput_rollup import ThroughputRecorder
from tests.queue_rows import delivery, entry

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
NOW = now_utc()
H = floor_to(NOW, HOUR) - timedelta(days=3)  # an hour whose minutes are due for thinning
LATENCIES = (0.004, 0.03, 0.03, 0.2, 0.2, 0.2, 0.9, 1.5, 12.0, 95.0)


@pytest.fixture
def store(engine) -> Engine:
    upgrade(engine)
    return engine


def record_two_hours(engine: Engine) -> None:
    """Traffic in the minutes of hours H and H + 1, with a queue sampled in both."""
    journal_id, _ = entry(engine)
    delivery(engine, journal_id, "lab-out", status="pending")
    clock = [H]
    recorder = ThroughputRecorder(engine, sample_queue=True, clock=lambda: clock[0])
    for minute in range(0, 120, 7):
        at = H + minute * MINUTE
        recorder.count("ehr-adt-feed", "received", minute % 5 + 1, at=at)
        recorder.count("ehr-adt-feed", "routed", minute % 5, at=at)
        recorder.count("ehr-adt-feed", "rejected", minute % 2, at=at)
        seconds = LATENCIES[minute % len(LATENCIES)]
        recorder.count("lab-out", "delivered", at=at)
        recorder.observe_delivery("lab-out", seconds, at=at)
        recorder.count("lab-out", "failed", int(minute % 3 == 0), at=at)
        if minute % 21 == 0:
            clock[0] = at
            recorder.flush()  # samples the queue: one delivery waits
    recorder.flush()


def day_of_the_two_hours(engine: Engine, connection: str | None = None):
    return Throughput(engine).series("day", connection, now=H + 2 * HOUR - MINUTE)


def rows(engine: Engine, model, resolution: str) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)
                                     .where(model.resolution == resolution)) or 0)


def test_old_minutes_become_hours_with_the_same_totals_and_percentiles(store):
    record_two_hours(store)
    recent = ThroughputRecorder(store)
    recent.count("ehr-adt-feed", "received", at=NOW - HOUR)  # young: stays a minute
    recent.flush()
    minutes = rows(store, ConnectionMinute, "minute")
    before = {c: day_of_the_two_hours(store, c)
              for c in (None, "ehr-adt-feed", "lab-out")}
    thinned = thin(store, NOW)
    assert thinned == Thinned(minutes - 1, 0)
    for connection, series in before.items():
        after = day_of_the_two_hours(store, connection)
        assert after.total == series.total
        # The hours' points hold all of their minutes now.
        hours = [p for p in after.points if p.start in (H, H + HOUR)]
        assert [p.received for p in hours] == [
            sum(p.received for p in series.points if start <= p.start < start + HOUR)
            for start in (H, H + HOUR)]
    assert before["lab-out"].total.p99_ms is not None
    assert before[None].total.queue_depth == 1
    # Per connection (and the whole outbox's queue row) one row an hour; the young
    # minute is left alone.
    assert rows(store, ConnectionMinute, "hour") == 6
    assert rows(store, ConnectionMinute, "minute") == 1
    assert rows(store, ConnectionMinuteLatency, "minute") == 0
    with store.connect() as connection:
        assert set(connection.execute(select(ConnectionMinute.connection_id,
                                             ConnectionMinute.starts_at)
                                      .where(ConnectionMinute.resolution == "hour"))) == {
            (c, h) for c in ("ehr-adt-feed", "lab-out", ALL_CONNECTIONS)
            for h in (H, H + HOUR)}


def test_thinning_again_changes_nothing_and_a_late_minute_adds_to_its_hour(store):
    record_two_hours(store)
    thin(store, NOW)
    thinned = day_of_the_two_hours(store).total
    assert thin(store, NOW) == Thinned(0, 0)
    assert day_of_the_two_hours(store).total == thinned
    late = ThroughputRecorder(store)  # an engine whose flush waited out a store outage
    late.count("ehr-adt-feed", "received", 7, at=H + 30 * MINUTE)
    late.observe_delivery("lab-out", 0.2, at=H + 30 * MINUTE)
    late.flush()
    assert thin(store, NOW) == Thinned(2, 0)
    total = day_of_the_two_hours(store).total
    assert total.received == thinned.received + 7
    assert rows(store, ConnectionMinute, "hour") == 6
    with store.connect() as connection:
        assert connection.scalar(select(func.sum(ConnectionMinuteLatency.deliveries))) == (
            thinned.delivered + 1)


def test_hours_older_than_90_days_are_deleted(store):
    recorder = ThroughputRecorder(store)
    for days in (91, 89):
        recorder.count("ehr-adt-feed", "received", days, at=NOW - timedelta(days=days))
        recorder.observe_delivery("lab-out", 0.1, at=NOW - timedelta(days=days))
    recorder.flush()
    assert thin(store, NOW) == Thinned(4, 2)  # hours of ehr-adt-feed and lab-out
    with store.connect() as connection:
        assert connection.scalar(select(func.sum(ConnectionMinute.received))) == 89
        assert connection.scalar(select(func.count()).select_from(
            ConnectionMinuteLatency)) == 1
    assert rows(store, ConnectionMinute, "minute") == 0


def test_two_engines_thinning_at_once_merge_each_minute_once(store):
    record_two_hours(store)
    before = day_of_the_two_hours(store).total
    url = store.url.render_as_string(hide_password=False)
    engines = [open_engine(url), open_engine(url)]
    together = threading.Barrier(2)
    done: list[Thinned] = []

    def thinning(engine: Engine) -> None:
        together.wait()
        done.append(thin(engine, NOW))

    try:
        threads = [threading.Thread(target=thinning, args=(e,)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for engine in engines:
            engine.dispose()
    assert len(done) == 2
    assert day_of_the_two_hours(store).total == before
    assert rows(store, ConnectionMinute, "minute") == 0
    assert rows(store, ConnectionMinute, "hour") == 6
