"""SQLite's plan for a query, for tests that pin which index a hot query walks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine


def sqlite_plan(engine: Engine, sql: str, parameters: Any = ()) -> str:
    """EXPLAIN QUERY PLAN's details for ``sql``, joined into one line."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
        return " ".join(str(row[-1]) for row in rows)
