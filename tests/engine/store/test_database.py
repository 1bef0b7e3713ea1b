"""SQLite transaction handling: writers take the write lock when they begin and queue
for it, readers take none, and SAVEPOINTs work."""

from __future__ import annotations

import threading

from sqlalchemy import text

from engine.store.database import open_engine, reader


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
