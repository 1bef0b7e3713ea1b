"""The throughput rollup's rows (engine.store.models.ConnectionMinute and
ConnectionMinuteLatency) and the one way they are written: added to. A period's counts
and latency counts are added to the stored ones (inserted when there are none yet) and
its queue depth is the deeper of the two, in one upsert per table on SQLite and on
PostgreSQL alike, so engines that flush the same minute at once add up, and a minute
merged into its hour again (a late flush) adds to it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from engine.store.models import ConnectionMinute, ConnectionMinuteLatency

FIELDS = ("received", "routed", "delivered", "failed", "rejected")
"""The counts of a period, as its columns are named."""
ALL_CONNECTIONS = "*"
"""The row that holds the whole outbox's queue depth (no connection id has a ``*``)."""
MINUTE_ROWS, HOUR_ROWS = "minute", "hour"
"""The resolutions of a period."""

PERIODS: Table = ConnectionMinute.__table__  # type: ignore[assignment]
LATENCIES: Table = ConnectionMinuteLatency.__table__  # type: ignore[assignment]
PERIOD_KEY = ("connection_id", "resolution", "starts_at")
LATENCY_KEY = (*PERIOD_KEY, "bucket")


def add(connection: Connection, periods: Sequence[dict[str, Any]],
        latencies: Sequence[dict[str, Any]]) -> None:
    """Add ``periods`` (every column of ConnectionMinute) and ``latencies`` (every
    column of ConnectionMinuteLatency) to the stored rows with the same keys."""
    statements = _statements(connection.dialect.name)
    # In key order: two engines adding the same rows at once lock them in one order,
    # and neither waits for the other in a cycle.
    if periods:
        connection.execute(statements[0], sorted(periods, key=_key(PERIOD_KEY)))
    if latencies:
        connection.execute(statements[1], sorted(latencies, key=_key(LATENCY_KEY)))


@functools.cache
def _statements(dialect: str) -> tuple[Insert, Insert]:
    insert: Callable[[Table], Any] = (
        postgresql.insert if dialect == "postgresql" else sqlite.insert)
    periods = insert(PERIODS)
    changes: dict[str, Any] = {name: PERIODS.c[name] + periods.excluded[name]
                               for name in FIELDS}
    changes["queue_depth"] = _deeper(dialect, PERIODS.c.queue_depth,
                                     periods.excluded.queue_depth)
    latencies = insert(LATENCIES)
    return (
        periods.on_conflict_do_update(index_elements=list(PERIOD_KEY), set_=changes),
        latencies.on_conflict_do_update(
            index_elements=list(LATENCY_KEY),
            set_={"deliveries": LATENCIES.c.deliveries + latencies.excluded.deliveries}))


def _deeper(dialect: str, stored: ColumnElement[Any],
            added: ColumnElement[Any]) -> ColumnElement[Any]:
    """The larger depth, or the one there is: SQLite's max() of a NULL is NULL."""
    larger = func.greatest if dialect == "postgresql" else func.max
    return larger(func.coalesce(stored, added), func.coalesce(added, stored))


def _key(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    return lambda row: tuple(row[name] for name in columns)
