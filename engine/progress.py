"""What each working part of an engine says about itself: the rule-set version it runs
and when it last made progress. Readiness is judged from it: a part that has not moved
for a while, while work waits for it, is stalled; and an engine can say which version
it routes by, so operators and tests can wait for a publish to take effect.

Parts are named by what they do: ``pipeline-0`` (a lane), ``pipeline`` (a thread),
``delivery``. A worker process beats through its report pipe (``engine.metrics.report``
with ``progress``); this process's table is what /readyz and /metrics read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# A part beats at most this often: once a second is fine-grained enough for a
# threshold of a minute, and keeps the report pipe quiet.
BEAT_EVERY = 1.0

Beat = Callable[[str, str, float], None]
"""How a part reports: ``report("progress", part, version)``."""


@dataclass(frozen=True)
class PartState:
    version: int
    beat_at: float  # time.monotonic() of the last beat


class Progress:
    """The parts of this process's engine, as they last reported. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._parts: dict[str, PartState] = {}

    def beat(self, part: str, version: int) -> None:
        with self._lock:
            self._parts[part] = PartState(version, self._clock())

    def forget(self, part: str) -> None:
        """A part that has gone for good (its worker is being replaced)."""
        with self._lock:
            self._parts.pop(part, None)

    def versions(self) -> dict[str, int]:
        with self._lock:
            return {part: state.version for part, state in sorted(self._parts.items())}

    def running_version(self, parts: list[str] | None = None) -> int | None:
        """The rule-set version every part runs; None while they disagree (a publish
        is reaching them) or before any has reported."""
        versions = self.versions()
        if parts is not None:
            if any(part not in versions for part in parts):
                return None
            versions = {part: versions[part] for part in parts}
        found = set(versions.values())
        return found.pop() if len(found) == 1 else None

    def silent_for(self, part: str) -> float | None:
        """Seconds since ``part`` last beat; None if it never has."""
        with self._lock:
            state = self._parts.get(part)
        return None if state is None else self._clock() - state.beat_at


class Heart:
    """A part's side of the beat: reports when the version changes, else at most once
    per ``every`` seconds. Safe to call from several threads of one part."""

    def __init__(self, part: str, report: Beat, every: float = BEAT_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.part = part
        self._report = report
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._sent_at = -float("inf")
        self._version: int | None = None

    def beat(self, version: int) -> None:
        now = self._clock()
        with self._lock:
            if version == self._version and now - self._sent_at < self._every:
                return
            self._sent_at, self._version = now, version
            self._report("progress", self.part, float(version))


PROGRESS = Progress()
"""This process's table: worker processes' beats reach it through their report pipes."""
