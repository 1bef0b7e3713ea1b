"""Opening the store: the engine for a database URL, with SQLite made durable.

An ACK promises the message survives a power loss, so SQLite runs in WAL mode with
``synchronous=FULL`` (every commit is fsynced); foreign keys are on, and writers wait
for each other instead of failing at once.

Writers queue on a file lock beside the database before they begin: SQLite's own busy
handler polls with sleeps of up to 100 ms, so a journal commit (and the ACKs waiting on
it) that met a pipeline worker's transaction would stall for far longer than that
transaction lasts. A writer takes the lock at once when it is free; when it is not, it
polls with waits that start at 50 µs and grow to 2 ms (flock has no timeout, and a
blocked flock cannot be interrupted), so it still gets its turn within a fraction of a
transaction's time, and gives up at a deadline as SQLite would: "database is locked",
which callers treat as the store being unavailable (ingest answers AE).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long a writer waits for its turn on the writers' lock (seconds): as long as
# SQLite's own busy timeout. open_engine's writer_lock_timeout overrides it per engine.
WRITER_LOCK_TIMEOUT = SQLITE_BUSY_TIMEOUT_MS / 1000
# Polling for a turn: the first wait and the longest (each wait doubles the last).
_FIRST_WAIT, _LONGEST_WAIT = 0.000_05, 0.002


def instance_folder(environ: Mapping[str, str] | None = None) -> Path:
    """``$SWITCHBOARD_INSTANCE``, else ``./instance``: where the embedded store, the
    audit key and the console's cookie key live, for every command and process."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("SWITCHBOARD_INSTANCE", Path.cwd() / "instance"))


def default_url(instance: Path | None = None) -> str:
    """The embedded default: one SQLite file in the instance folder."""
    instance = instance_folder() if instance is None else instance
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance.resolve() / 'switchboard.db'}"


def open_engine(url: str, *, writer_lock_timeout: float | None = None,
                **options: Any) -> Engine:
    """An engine for ``url``; ``postgresql://`` URLs use psycopg 3. On a SQLite file, a
    writing transaction that gets no turn on the writers' lock within
    ``writer_lock_timeout`` seconds (default WRITER_LOCK_TIMEOUT) fails to begin with
    sqlalchemy.exc.OperationalError ("database is locked")."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _durable_sqlite)
        engine.dialect.do_begin = _do_begin  # type: ignore[method-assign]
        if parsed.database and parsed.database != ":memory:":
            timeout = WRITER_LOCK_TIMEOUT if writer_lock_timeout is None else writer_lock_timeout
            _queue_writers(engine, f"{parsed.database}.writers", timeout)
        else:
            event.listen(engine, "begin", _begin)
    return engine


def _queue_writers(engine: Engine, lock_path: str, timeout: float) -> None:
    """Take the lock file before a writing transaction begins (within ``timeout``);
    give it back once the transaction has ended (after SQLite's COMMIT, not before, or
    the next writer would meet SQLite's own lock and poll), or when its connection is
    closed or lost."""

    def lock_fd(info: dict[str, Any]) -> int:
        fd: int | None = info.get("writer_lock_fd")
        if fd is None:
            # One open file per connection: flock excludes other open files, so the
            # connections of one process queue on it as well as other processes.
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            info["writer_lock_fd"] = fd
        return fd

    def queue(connection: Any) -> None:
        if connection.get_execution_options().get("sqlite_begin") != "DEFERRED":
            # Taken in do_begin: SQLAlchemy wraps a failure there as its own error and
            # leaves the connection as it was.
            info = connection.connection.info
            info["writer_turn"] = (lock_fd(info), timeout)

    def release(info: dict[str, Any]) -> None:
        fd = info.get("writer_lock_fd")
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(_dbapi: Any, record: Any, *_: Any) -> None:
        fd = record.info.pop("writer_lock_fd", None)
        if fd is not None:
            os.close(fd)  # closing releases the lock too

    dialect = engine.dialect
    for name in ("do_commit", "do_rollback"):
        setattr(dialect, name, _then_release(getattr(dialect, name), release))
    def begin(connection: Any) -> None:
        queue(connection)
        _begin(connection)

    event.listen(engine, "begin", begin)
    event.listen(engine.pool, "checkin", lambda _dbapi, record: release(record.info))
    event.listen(engine.pool, "close", close)
    event.listen(engine.pool, "invalidate", close)


def _then_release(end: Any, release: Any) -> Any:
    def ended(connection: Any) -> None:
        try:
            end(connection)
        finally:
            try:
                info = connection.info
            except (AttributeError, NotImplementedError):  # a bare driver connection
                info = None
            if info is not None:
                release(info)

    return ended


def reader(engine: Engine) -> Engine:
    """``engine`` for transactions that only read. On SQLite every other transaction
    takes the write lock when it begins (BEGIN IMMEDIATE): one that read first and wrote
    later could not upgrade while another writer holds the lock, and would fail instead
    of waiting. Readers in WAL mode need no lock and must not take it.

    Either way a reading transaction sees one moment from its first statement to its
    last (SQLite's WAL snapshot; REPEATABLE READ on PostgreSQL, whose READ COMMITTED
    would let a page read in several statements mix the before and after of another
    transaction's commit: a message's deliveries without its routing version)."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    return engine.execution_options(sqlite_begin="DEFERRED")


def _begin(connection: Any) -> None:
    # The driver's own transaction handling is off (see below): SQLAlchemy's begin is
    # the only one, so SAVEPOINTs (begin_nested) behave as documented. The listener
    # only chooses the mode; the dialect's do_begin runs it.
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    connection.connection.info["sqlite_begin"] = (
        "BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def _do_begin(dbapi_connection: Any) -> None:
    # On the driver's cursor rather than through exec_driver_sql: every journal commit
    # begins one, and SQLAlchemy still wraps a failure here as its own error. The
    # writers' lock first, then BEGIN IMMEDIATE (the other way round, a writer would
    # meet SQLite's lock and poll for it).
    info = dbapi_connection.info
    statement = info.pop("sqlite_begin", "BEGIN IMMEDIATE")
    turn = info.pop("writer_turn", None)
    if turn is not None:
        _take_turn(*turn)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _take_turn(fd: int, timeout: float) -> None:
    """The writers' lock on ``fd``: at once when it is free, else by polling with
    growing waits; sqlite3.OperationalError when ``timeout`` passes first."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    deadline = time.monotonic() + timeout
    wait = _FIRST_WAIT
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(wait, left))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            wait = min(wait * 2, _LONGEST_WAIT)
    raise sqlite3.OperationalError(
        f"database is locked: no turn on the writers' lock within {timeout:g} s")


def _durable_sqlite(connection: Any, _record: Any) -> None:
    # pysqlite would open transactions lazily on its own and breaks SAVEPOINT; hand
    # transaction control to SQLAlchemy (its documented recipe for SQLite).
    connection.isolation_level = None
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """Put a new database file in WAL mode (the mode stays with the file). Switching
    takes SQLite's exclusive lock without waiting on the busy timeout, so processes
    opening a new file at once would fail with 'database is locked': they take turns
    on the writers' lock file instead."""
    main = next(row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main")
    if not main:  # in memory: nobody else can open it
        cursor.execute("PRAGMA journal_mode=WAL")
        return
    fd = os.open(f"{main}.writers", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        os.close(fd)  # closing the file gives the lock back
