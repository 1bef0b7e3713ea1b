"""Thinning the throughput rollups by age: the minutes of hours that ended more than
two days ago are merged into their hours, and hours older than 90 days are deleted.
Run every ``interval`` seconds by APScheduler in the engine.

Safe with several engines: a pass merges only the minutes its own DELETE ... RETURNING
took, and adds them to their hours (engine.rollup_store), so no minute counts twice and
a minute flushed late, after its hour was made, is added to it by the next pass. On
PostgreSQL one engine thins at a time (an advisory lock the others do not wait for);
on SQLite the write lock each transaction takes first does the same."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Connection, Engine, Table, delete, func, select, text

from engine.journal import now_utc
from engine.rollup_store import (
    FIELDS,
    HOUR_ROWS,
    LATENCIES,
    MINUTE_ROWS,
    PERIODS,
    add,
)
from engine.throughput_points import floor_to

log = logging.getLogger("switchboard.throughput")
KEEP_MINUTES = timedelta(hours=48)
KEEP_HOURS = timedelta(days=90)
HOUR = timedelta(hours=1)
CHUNK = timedelta(days=1)
"""Minutes merged in one transaction, at most: a store that was not thinned for a
while is caught up in several short transactions, not one long one."""
# The key of the PostgreSQL advisory lock one thinning pass holds: "SBTHIN".
THIN_LOCK = 0x5342_5448_494E_0000


@dataclass(frozen=True)
class Thinned:
    minutes: int  # minute rows merged into their hours (latency rows not counted)
    hours: int  # hour rows deleted


def thin(engine: Engine, now: datetime | None = None) -> Thinned:
    """Merge the old minutes into hours, then delete the old hours; what was done.
    Nothing, when another engine is thinning the same store."""
    now = now or now_utc()
    cutoff = floor_to(now - KEEP_MINUTES, HOUR)
    minutes = 0
    while True:
        with engine.begin() as connection:
            if not _alone(connection):
                return Thinned(minutes, 0)
            merged, latencies = _merge_oldest(connection, cutoff)
        minutes += merged
        if not merged and not latencies:
            break
    with engine.begin() as connection:
        if not _alone(connection):
            return Thinned(minutes, 0)
        hours = 0
        for table in (PERIODS, LATENCIES):
            deleted = connection.execute(delete(table).where(
                table.c.resolution == HOUR_ROWS, table.c.starts_at < now - KEEP_HOURS))
            hours += int(deleted.rowcount or 0) if table is PERIODS else 0
    return Thinned(minutes, hours)


def _alone(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return True
    return bool(connection.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                  {"key": THIN_LOCK}))


def _merge_oldest(connection: Connection, cutoff: datetime) -> tuple[int, int]:
    """Merge the oldest CHUNK of minutes before ``cutoff`` into their hours: how many
    minute rows, and latency rows, were merged."""
    oldest = [connection.scalar(select(func.min(table.c.starts_at)).where(
        _minutes_before(table, cutoff))) for table in (PERIODS, LATENCIES)]
    found = [moment for moment in oldest if moment is not None]
    if not found:
        return 0, 0
    end = min(cutoff, floor_to(min(found), HOUR) + CHUNK)
    periods = _take(connection, PERIODS, end)
    latencies = _take(connection, LATENCIES, end)
    add(connection, _period_hours(periods), _latency_hours(latencies))
    return len(periods), len(latencies)


def _minutes_before(table: Table, end: datetime) -> Any:
    return (table.c.resolution == MINUTE_ROWS) & (table.c.starts_at < end)


def _take(connection: Connection, table: Table, end: datetime) -> Sequence[Any]:
    """Delete the minutes before ``end`` and return them: a minute another engine
    deleted first is not returned here."""
    return connection.execute(
        delete(table).where(_minutes_before(table, end)).returning(*table.c)).all()


def _period_hours(rows: Sequence[Any]) -> list[dict[str, Any]]:
    hours: dict[tuple[str, datetime], dict[str, Any]] = {}
    for row in rows:
        hour = floor_to(row.starts_at, HOUR)
        into = hours.setdefault((row.connection_id, hour), {
            "connection_id": row.connection_id, "resolution": HOUR_ROWS, "starts_at": hour,
            "queue_depth": None, **dict.fromkeys(FIELDS, 0)})
        for name in FIELDS:
            into[name] += row._mapping[name]
        if row.queue_depth is not None:
            into["queue_depth"] = max(into["queue_depth"] or 0, row.queue_depth)
    return list(hours.values())


def _latency_hours(rows: Sequence[Any]) -> list[dict[str, Any]]:
    hours: dict[tuple[str, datetime, int], int] = {}
    for row in rows:
        key = (row.connection_id, floor_to(row.starts_at, HOUR), row.bucket)
        hours[key] = hours.get(key, 0) + row.deliveries
    return [{"connection_id": connection, "resolution": HOUR_ROWS, "starts_at": hour,
             "bucket": bucket, "deliveries": n}
            for (connection, hour, bucket), n in hours.items()]


class RollupThinning:
    """The thinning job on a background scheduler of its own."""

    def __init__(self, engine: Engine, interval: float = 900.0) -> None:
        self._engine = engine
        self._interval = interval
        self._scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(self.run, "interval", seconds=self._interval, max_instances=1,
                          coalesce=True, id="rollup-thinning")
        scheduler.start()
        self._scheduler = scheduler

    def run(self) -> None:
        try:
            thinned = thin(self._engine)
        except Exception:  # the store is down: the next run tries again
            log.exception("thinning the throughput rollups failed")
            return
        if thinned.minutes or thinned.hours:
            log.info("throughput rollups thinned",
                     extra={"minutes_merged": thinned.minutes, "hours_deleted": thinned.hours})

    def stop(self) -> None:
        if self._scheduler is not None:
            scheduler, self._scheduler = self._scheduler, None
            scheduler.shutdown(wait=True)
