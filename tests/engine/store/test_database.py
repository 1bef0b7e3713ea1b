"""SQLite transaction handling: writers take the write lock when they begin and queue
for it, readers take none, and SAVEPOINTs work."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from engine.store.database import open_engine, reader
from tests.waiting import wait_until


def test_read_then_write_transactions_never_fail_on_the_lock(tmp_path):
    """Regression: a transaction that read first and wrote later could not upgrade its
    lock while another writer held it, and failed with 'database is locked'."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    errors: list[Exception] = []

    def bump(times: int) -> None:
        for _ in range(times):
            try:
                with engine.begin() as connection:
                    n = connection.execute(text("SELECT n FROM counter")).scalar_one()
                    connection.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
            except Exception as error:  # recorded: the assertion below names it
                errors.append(error)

    threads = [threading.Thread(target=bump, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    with reader(engine).connect() as connection:
        total = connection.execute(text("SELECT n FROM counter")).scalar_one()
    engine.dispose()
    assert errors == []
    assert total == 200  # no lost update: each read-modify-write was serialised


def test_a_reader_does_not_wait_for_a_writer(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    with engine.begin() as writing:
        writing.execute(text("INSERT INTO t VALUES (1)"))
        # The writer holds the lock; a reader still sees the last committed state.
        with reader(engine).connect() as reading:
            assert reading.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    engine.dispose()


def test_savepoints_roll_back_only_their_part(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER UNIQUE)"))
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
        try:
            with connection.begin_nested():
                connection.execute(text("INSERT INTO t VALUES (2)"))
                connection.execute(text("INSERT INTO t VALUES (1)"))  # violates UNIQUE
        except Exception:  # the savepoint is rolled back; the outer transaction lives
            pass
        connection.execute(text("INSERT INTO t VALUES (3)"))
    with reader(engine).connect() as connection:
        assert connection.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 3]
    engine.dispose()


def test_a_writer_queues_on_the_lock_file_before_it_takes_sqlite_s_lock(tmp_path):
    """Regression: the queue listener ran after BEGIN IMMEDIATE, so writers met SQLite's
    own lock and polled for it with sleeps (the ingest p99). While another writer holds
    the queue, a waiting writer must not hold SQLite's write lock."""
    import fcntl
    import os
    import sqlite3

    path = tmp_path / "store.db"
    engine = open_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    queue = os.open(f"{path}.writers", os.O_RDWR | os.O_CREAT)
    fcntl.flock(queue, fcntl.LOCK_EX)  # another writer's turn
    finished = threading.Event()

    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
        finished.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_until(lambda: waiting_for_its_turn(writer), what="the writer to queue")
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            # 'database is locked' here: the writer took SQLite's lock out of turn.
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert not finished.is_set()
    finally:
        fcntl.flock(queue, fcntl.LOCK_UN)
        os.close(queue)
    writer.join(30)
    assert finished.is_set()
    engine.dispose()


def test_processes_opening_a_new_database_at_once_wait_for_each_other(tmp_path):
    """Switching a new file to WAL needs SQLite's exclusive lock: a connection that
    asked before it had a busy timeout failed at once with 'database is locked' while
    another one switched (seen as one engine of four failing to start)."""
    failures: list[BaseException] = []
    for round_number in range(25):
        url = f"sqlite:///{tmp_path / f'new-{round_number}.db'}"
        start = threading.Barrier(6)
        engines = [open_engine(url) for _ in range(6)]

        def connect(engine=None, start=start) -> None:
            start.wait()
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
            except BaseException as error:  # reported below
                failures.append(error)

        threads = [threading.Thread(target=connect, kwargs={"engine": e}) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for engine in engines:
            engine.dispose()
    assert failures == []


def test_a_writer_without_a_turn_in_time_fails_as_locked_and_its_connection_lives_on(tmp_path):
    """The writers' lock has a deadline (open_engine's writer_lock_timeout): past it,
    beginning fails as SQLite's own 'database is locked' does, and the connection
    still begins, and writes, once the lock is free."""
    import fcntl
    import os

    path = tmp_path / "store.db"
    engine = open_engine(f"sqlite:///{path}", writer_lock_timeout=0.05)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    queue = os.open(f"{path}.writers", os.O_RDWR | os.O_CREAT)
    try:
        with engine.connect() as connection:
            fcntl.flock(queue, fcntl.LOCK_EX)  # another writer's turn, past the deadline
            with pytest.raises(OperationalError, match="database is locked"):
                connection.begin()
            with reader(engine).connect() as reading:  # readers need no turn
                assert reading.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
            fcntl.flock(queue, fcntl.LOCK_UN)
            with connection.begin():
                connection.execute(text("INSERT INTO t VALUES (1)"))
            assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    finally:
        os.close(queue)
        engine.dispose()


def waiting_for_its_turn(thread: threading.Thread) -> bool:
    """Whether ``thread`` is in the store's wait for a turn on the writers' lock. The
    store says nothing of writers waiting, so this looks at the thread's stack."""
    import sys

    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "_take_turn":
            return True
        frame = frame.f_back
    return False


def test_a_read_transaction_sees_one_moment_from_its_first_to_its_last_statement(engine):
    """A page read in several statements (a message, then its deliveries) never mixes
    what was before and after another transaction's commit."""
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE moments (n INTEGER)"))
    with reader(engine).connect() as reading:
        with reading.begin():
            first = reading.execute(text("SELECT count(*) FROM moments")).scalar_one()
            with engine.begin() as writing:
                writing.execute(text("INSERT INTO moments VALUES (1)"))
            assert reading.execute(text("SELECT count(*) FROM moments")).scalar_one() == first
        with reading.begin():
            assert reading.execute(text("SELECT count(*) FROM moments")).scalar_one() == 1
