"""The database's plan for a query, for tests that pin which index a hot query walks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


def sqlite_plan(engine: Engine, sql: str, parameters: Any = ()) -> str:
    """EXPLAIN QUERY PLAN's details for ``sql``, joined into one line."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
        return " ".join(str(row[-1]) for row in rows)


def plan(engine: Engine, sql: str, parameters: Any = ()) -> str:
    """The plan for ``sql`` as sent to the driver, joined into one line: SQLite's EXPLAIN
    QUERY PLAN details, or PostgreSQL's EXPLAIN."""
    if engine.dialect.name == "sqlite":
        return sqlite_plan(engine, sql, parameters)
    with engine.connect() as connection:
        # On a test's small tables a sequential scan can be cheapest; what a plan test
        # asks is whether an index serves the query, as it must on a large store.
        connection.exec_driver_sql("SET enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {sql}", parameters)
        return " ".join(str(row[0]).strip() for row in rows)


@contextmanager
def statements_sent(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements ``engine`` sends while the block runs, each with its parameters
    as the driver got them (bound values processed, literal ones written in)."""
    sent: list[tuple[str, Any]] = []

    def record(_connection: Any, _cursor: Any, statement: str, parameters: Any,
               _context: Any, _executemany: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
