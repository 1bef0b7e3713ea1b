"""Opening the store: the engine for a database URL, with SQLite made durable.

An ACK promises the message survives a power loss, so SQLite runs in WAL mode with
``synchronous=FULL`` (every commit is fsynced); foreign keys are on, and writers wait
for each other instead of failing at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000


def default_url(instance: Path) -> str:
    """The embedded default: one SQLite file in the instance folder."""
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance.resolve() / 'switchboard.db'}"


def open_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; ``postgresql://`` URLs use psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _durable_sqlite)
    return engine


def _durable_sqlite(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
