"""The one way a test waits: for an event it can check, never for a stretch of time.
The limit only bounds a failure (a hang becomes a message); a pass never waits for it,
so it is generous enough for a busy machine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
LIMIT = 60.0  # seconds; a process start or a restart on a loaded 2-core machine fits
EVERY = 0.05  # between two checks; a pass costs at most this much more


def wait_until(check: Callable[[], T], limit: float = LIMIT, what: str = "a condition",
               every: float = EVERY) -> T:
    """``check()``'s first true answer; fails with ``what`` once ``limit`` has passed."""
    deadline = time.monotonic() + limit
    while not (found := check()):
        assert time.monotonic() < deadline, f"waited {limit:g} s for {what}"
        time.sleep(every)
    return found


async def wait_until_async(check: Callable[[], T], limit: float = LIMIT,
                           what: str = "a condition", every: float = EVERY) -> T:
    """``wait_until`` on an event loop: the code under test runs between checks."""
    deadline = time.monotonic() + limit
    while not (found := check()):
        assert time.monotonic() < deadline, f"waited {limit:g} s for {what}"
        await asyncio.sleep(every)
    return found
