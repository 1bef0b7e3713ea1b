"""Statements compiled once and run on the driver's own cursor.

The journal's writer and the pipeline run the same few statements thousands of times a
second. Through ``Connection.execute`` each run pays for a cache-key walk, a fresh
execution context and a result object, several times what SQLite takes to do the work:
it was the larger part of a journal commit. A prepared statement compiles its SQL for
one dialect once and converts each row with the bound columns' own bind processors, so
the values stored are exactly those SQLAlchemy would store; driver errors are raised as
SQLAlchemy's, so callers handle one family of exceptions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Row = Mapping[str, Any]
_Convert = Callable[[Any], Any] | None


class Prepared:
    """``statement`` compiled for ``dialect``. Rows are mappings from bind name (a
    column name for an insert) to value, and must name every bind: unlike
    ``Connection.execute``, nothing here applies column defaults."""

    def __init__(self, statement: ClauseElement, dialect: Dialect,
                 column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {type(statement).__name__}")
        self.sql = compiled.string
        self._dialect = dialect
        self._positional = bool(compiled.positional)
        names = list(compiled.positiontup or []) if self._positional else list(compiled.binds)
        self._names = names
        self._convert: list[_Convert] = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        ]

    @classmethod
    def insert(cls, table: Table, columns: Sequence[str], dialect: Dialect) -> Prepared:
        return cls(table.insert(), dialect, columns)

    def parameters(self, row: Row) -> Any:
        values = [
            (row[name] if convert is None else convert(row[name]))
            for name, convert in zip(self._names, self._convert, strict=True)
        ]
        return tuple(values) if self._positional else dict(zip(self._names, values,
                                                               strict=True))

    def execute(self, connection: Connection, row: Row) -> Any:
        """Run once; returns the driver's cursor (for ``lastrowid`` or fetching)."""
        parameters = self.parameters(row)
        cursor = connection.connection.cursor()
        with self._translated(connection, parameters):
            cursor.execute(self.sql, parameters)
        return cursor

    def execute_many(self, connection: Connection, rows: Iterable[Row]) -> None:
        self.execute_bound(connection, self.bind_many(rows))

    def bind_many(self, rows: Iterable[Row]) -> list[Any]:
        """The driver's parameters for ``rows``: converting them (JSON, times) can be
        done before the transaction, so that a writer holds the database's lock only
        for the database's work."""
        return [self.parameters(row) for row in rows]

    def execute_bound(self, connection: Connection, batch: list[Any]) -> None:
        """Run once for each of ``bind_many``'s parameters."""
        if not batch:
            return
        cursor = connection.connection.cursor()
        with self._translated(connection, batch):
            cursor.executemany(self.sql, batch)
        cursor.close()

    @contextlib.contextmanager
    def _translated(self, connection: Connection, parameters: Any) -> Iterator[None]:
        """Raise a driver error as SQLAlchemy's, and drop a connection the database
        has gone from, as ``Connection.execute`` would."""
        dbapi_error = self._dialect.loaded_dbapi.Error
        try:
            yield
        except dbapi_error as error:
            disconnected = self._dialect.is_disconnect(
                error, connection.connection.dbapi_connection, None)
            if disconnected:
                connection.invalidate(error)
            # Parameters hold message content: never let them into an error's text.
            raise DBAPIError.instance(
                self.sql, parameters, error, dbapi_error, hide_parameters=True,
                connection_invalidated=disconnected,
            ) from error
