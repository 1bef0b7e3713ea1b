"""Another connection's write transaction on a SQLite store, open for as long as a
test needs it, and a call made on a thread of its own so that a test waiting on it
fails, rather than hangs, when the call waits for the writers' lock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from engine.store.database import open_engine

# Long enough for any answer on a busy machine; only a call stuck on the lock reaches it.
ANSWER_LIMIT = 30.0


@contextmanager
def writer_lock_held(url: str) -> Iterator[None]:
    """A write transaction from another engine on the store at ``url``, holding the
    writers' lock (and SQLite's own) until the block ends."""
    other = open_engine(url)
    held, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with other.begin() as connection:
                connection.execute(text("UPDATE users SET disabled = disabled"))
                held.set()
                release.wait()
        except BaseException as error:  # reported by the test below
            failures.append(error)
            held.set()

    holder = threading.Thread(target=hold, name="writer-lock-holder", daemon=True)
    holder.start()
    try:
        assert held.wait(ANSWER_LIMIT) and not failures, failures
        yield
    finally:
        release.set()
        holder.join(ANSWER_LIMIT)
        other.dispose()
    assert not holder.is_alive() and not failures, failures


def on_a_thread(call: Callable[[], Any]) -> Future[Any]:
    """``call()`` started on a thread of its own; its outcome as a future."""
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as error:  # handed to whoever waits on the future
            future.set_exception(error)

    threading.Thread(target=run, name="call-under-test", daemon=True).start()
    return future
