"""Faults a test injects into the destinations it runs: the only deliberate slowness
in the tests. A fault is called with the number of each request a destination
receives (1 for the first) before the destination answers it."""

from __future__ import annotations

import contextlib
import threading
import time

from tests.waiting import LIMIT


class Late:
    """A destination that answers every request ``seconds`` late, so that several
    deliveries are in flight at once and claims from several engines overlap."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, number: int) -> None:
        time.sleep(self.seconds)


class Hold:
    """A destination that holds request number ``at`` (every request when None) until
    the test releases it: while one is held, a delivery is provably in flight. Held
    requests go on by themselves after ``limit`` seconds, so a failed test ends."""

    def __init__(self, at: int | None = None, limit: float = LIMIT) -> None:
        self.at = at
        self.limit = limit
        self.caught = threading.Event()  # set once a request is held
        self.held = 0  # requests held now
        self._released = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, number: int) -> None:
        if self.at is None or number == self.at:
            self.hold()

    def hold(self) -> None:
        """Hold the calling request until ``release()``."""
        with self._lock:
            self.held += 1
        self.caught.set()
        try:
            self._released.wait(self.limit)
        finally:
            with self._lock:
                self.held -= 1

    def release(self) -> None:
        self._released.set()


class Together:
    """A destination that holds each of the first ``count`` requests until all of them
    have arrived: proves that a sender had that many in flight at once."""

    def __init__(self, count: int, limit: float = LIMIT) -> None:
        self.count = count
        self.met = threading.Event()  # set once all ``count`` were held at once
        self._all_here = threading.Barrier(count, action=self.met.set, timeout=limit)

    def __call__(self, number: int) -> None:
        if number <= self.count:
            # After ``limit`` the requests go on, and the test fails on ``met``.
            with contextlib.suppress(threading.BrokenBarrierError):
                self._all_here.wait()
