"""Throughput rollups on SQLite and PostgreSQL: what each process counts is added to the
store when it flushes (engine.throughput_rollup), so two engines' counts add up, the
history outlives a restart, counts a failed flush could not write are kept, and the
charts (engine.throughput) read it back with the queue depth sampled from the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from engine.journal import now_utc
from engine.latency_histogram import percentile
from engine.rollup_store import ALL_CONNECTIONS
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from engine.store.models import ConnectionMinute, ConnectionMinuteLatency
from engine.throughput import Throughput, UnknownWindow
from engine.throughput_points import Point, floor_to
from engine.throughput_rollup import ThroughputRecorder
from tests.queue_rows import delivery, entry

MINUTE = timedelta(minutes=1)
NOW = floor_to(now_utc(), MINUTE) + timedelta(seconds=30)


@pytest.fixture
def store(engine) -> Engine:
    upgrade(engine)
    return engine


def another_process(engine: Engine) -> Engine:
    """The same store, reached as another engine process would reach it."""
    return open_engine(engine.url.render_as_string(hide_password=False))


def row_count(engine: Engine, model) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)


def test_the_counts_of_two_recorders_add_up(store):
    other = another_process(store)
    try:
        first, second = ThroughputRecorder(store), ThroughputRecorder(other)
        first.count("ehr-adt-feed", "received", 3, at=NOW)
        second.count("ehr-adt-feed", "received", 2, at=NOW - timedelta(seconds=20))
        second.count("ehr-adt-feed", "rejected", at=NOW)
        first.count("ehr-adt-feed", "routed", 2, at=NOW)
        for recorder in (first, second):
            recorder.count("lab-out", "delivered", at=NOW)
            recorder.observe_delivery("lab-out", 0.1, at=NOW)
        second.observe_delivery("lab-out", 2.0, at=NOW)
        second.count("lab-out", "failed", at=NOW)
        for recorder in (first, second, first):  # a flush with nothing new adds nothing
            recorder.flush()
    finally:
        other.dispose()
    charts = Throughput(store)
    feed = charts.series("hour", "ehr-adt-feed", now=NOW)
    assert feed.points[-1] == Point(feed.points[-1].start, received=5, routed=2, rejected=1)
    lab = charts.series("hour", "lab-out", now=NOW).points[-1]
    histogram = {14: 2, 22: 1}  # two deliveries in 100 ms, one in 2 s
    assert (lab.delivered, lab.failed) == (2, 1)
    assert (lab.p50_ms, lab.p99_ms) == (percentile(histogram, 0.5), percentile(histogram, 0.99))
    overall = charts.series("hour", now=NOW)
    assert overall.total == Point(overall.points[0].start, received=5, routed=2, delivered=2,
                                  failed=1, rejected=1, p50_ms=lab.p50_ms, p99_ms=lab.p99_ms)
    # One row per connection and minute, however many engines added to it.
    assert row_count(store, ConnectionMinute) == 2
    assert row_count(store, ConnectionMinuteLatency) == 2
    assert charts.connections("hour", now=NOW) == ["ehr-adt-feed", "lab-out"]


def test_the_history_outlives_a_restart(store):
    before = another_process(store)
    recorder = ThroughputRecorder(before)
    recorder.count("ehr-adt-feed", "received", 4, at=NOW - 3 * MINUTE)
    recorder.close()  # a clean stop flushes what is left
    before.dispose()
    after = another_process(store)
    try:
        restarted = ThroughputRecorder(after)
        restarted.count("ehr-adt-feed", "received", 1, at=NOW)
        restarted.flush()
    finally:
        after.dispose()
    series = Throughput(store).series("hour", "ehr-adt-feed", now=NOW)
    assert [p.received for p in series.points[-4:]] == [4, 0, 0, 1]
    assert series.total.received == 5


def test_counts_a_flush_could_not_store_are_kept_for_the_next(store):
    recorder = ThroughputRecorder(store)
    recorder.count("ehr-adt-feed", "received", 2, at=NOW)
    with store.begin() as connection:  # the store refuses the rollup for a while
        connection.execute(text("ALTER TABLE connection_minutes RENAME TO away"))
    with pytest.raises(Exception, match="connection_minutes"):
        recorder.flush()
    recorder.count("ehr-adt-feed", "received", 1, at=NOW)
    with store.begin() as connection:
        connection.execute(text("ALTER TABLE away RENAME TO connection_minutes"))
    recorder.flush()
    assert Throughput(store).series("hour", now=NOW).total.received == 3


def test_each_flush_samples_the_outbox_queue_per_destination_and_in_all(store):
    journal_id, _ = entry(store)
    for status in ("pending", "retrying", "held", "delivered", "dead"):
        delivery(store, journal_id, "clinic-north", status=status)
    delivery(store, journal_id, "lab-out", status="in_flight")
    clock = [NOW]
    other = another_process(store)
    try:
        engines = [ThroughputRecorder(e, sample_queue=True, clock=lambda: clock[0])
                   for e in (store, other)]
        for recorder in engines:  # two engines sample the same queue: the deepest, not
            recorder.flush()      # the sum
        with store.begin() as connection:  # the queue drains within the minute
            connection.execute(text("UPDATE deliveries SET status = 'delivered'"))
        engines[0].flush()
        clock[0] = NOW + MINUTE
        engines[1].flush()
    finally:
        other.dispose()
    charts = Throughput(store)
    now = NOW + MINUTE

    def depths(connection: str | None) -> list[int | None]:
        return [p.queue_depth for p in charts.series("hour", connection, now)
                .points[-3:]]

    assert depths("clinic-north") == [None, 3, 0]  # pending, retrying and held wait
    assert depths("lab-out") == [None, 1, 0]
    assert depths(None) == [None, 4, 0]
    assert depths("ehr-adt-feed") == [None, 0, 0]  # sampled, and nothing waits for it
    with store.connect() as connection:
        assert connection.scalar(select(ConnectionMinute.queue_depth).where(
            ConnectionMinute.connection_id == ALL_CONNECTIONS,
            ConnectionMinute.starts_at == floor_to(NOW, MINUTE))) == 4


def test_a_day_is_points_of_a_quarter_hour(store):
    recorder = ThroughputRecorder(store)
    for minutes_ago in (0, 14, 15, 60 * 23 + 30, 60 * 24 + 30):
        recorder.count("ehr-adt-feed", "received", at=NOW - minutes_ago * MINUTE)
    recorder.flush()
    now = floor_to(NOW, timedelta(minutes=15)) + timedelta(minutes=14)
    day = Throughput(store).series("day", now=now)
    assert len(day.points) == 96 and day.step == timedelta(minutes=15)
    assert day.points[-1].start == floor_to(now, timedelta(minutes=15))
    assert day.points[0].start == day.points[-1].start - timedelta(hours=23, minutes=45)
    # The last, older than the day, is left out.
    assert day.total.received == 4


def test_an_unknown_window_says_which_there_are(store):
    with pytest.raises(UnknownWindow) as raised:
        Throughput(store).series("week")  # type: ignore[arg-type]
    assert str(raised.value) == "no chart window 'week'. Ask for hour or day"
