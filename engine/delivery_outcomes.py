"""Delivery outcomes, recorded as they happen: the sending threads hand each outcome to
a recording thread and go on to the next send, and the recorder writes whatever has
come in since its last transaction in one more. So a finished delivery is on record
while a slow one beside it is still being sent (a restart does not send it again),
and a fast destination still costs a transaction per batch of outcomes, not per
delivery.

An outcome that cannot be recorded (the store is down) is kept and recorded again
until it is: the destination has the message, and forgetting that would send it twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from engine.connectors.sink import DeliveryFailed
from engine.outbox import Attempt, Claimed, Outbox, Recorded
from engine.pipeline import Report, Stop
from engine.rules.exception_policy import ErrorClass
from engine.rules.rule_set import RuleSet
from engine.store.availability import error_name, store_unavailable

log = logging.getLogger("switchboard.delivery")
RECORD_RETRY_SECONDS = 1.0


@dataclass
class _Outcomes:
    attempts: list[Attempt]
    unsent: list[Claimed]
    rule_set: RuleSet


class OutcomeRecorder:
    def __init__(self, outbox: Outbox, report: Report) -> None:
        self._outbox = outbox
        self._report = report
        self._queue: list[_Outcomes] = []
        self._unrecorded = 0  # handed in and not yet recorded (or given up)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, attempts: Sequence[Attempt], unsent: Sequence[Claimed],
            rule_set: RuleSet) -> None:
        """Record these outcomes (and give back ``unsent``, after them) soon."""
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._record_until_stopped,
                                                name="delivery-outcomes", daemon=True)
                self._thread.start()
            self._queue.append(_Outcomes(list(attempts), list(unsent), rule_set))
            self._unrecorded += 1
            self._changed.notify_all()

    def flush(self, stop: Stop | None = None, limit: float | None = None) -> None:
        """Wait until everything handed in is recorded, or ``stop`` (or ``close``), or
        ``limit`` seconds: a pass ends with its outcomes on record, or with its claims
        left to lapse."""
        deadline = None if limit is None else time.monotonic() + limit
        with self._changed:
            while self._unrecorded and not self._stop.is_set() and not (
                    stop is not None and stop.is_set()):
                if deadline is not None and time.monotonic() >= deadline:
                    return
                self._changed.wait(0.5)

    def close(self) -> None:
        """Stop recording: what is not on record yet is left to its claims' leases."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(10)

    def _record_until_stopped(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._stop.is_set():
                    self._changed.wait()
                if self._stop.is_set():
                    return
                taken, self._queue = self._queue, []
            try:
                for rule_set, part in _by_rule_set(taken):
                    recorded = self._record(part, rule_set)
                    if recorded is not None:
                        _count(recorded, self._report)
            except Exception:  # a defect must not end recording for everyone
                log.exception("delivery outcomes could not be recorded; their claims "
                              "will lapse")
            finally:
                with self._changed:
                    self._unrecorded -= len(taken)
                    self._changed.notify_all()

    def _record(self, outcomes: _Outcomes, rule_set: RuleSet) -> Recorded | None:
        while True:
            try:
                return self._outbox.record(outcomes.attempts, outcomes.unsent, rule_set)
            except Exception as error:
                if not store_unavailable(error):
                    # One outcome the store refuses must not hold the others (nor the
                    # line) in a loop of retries.
                    log.error("delivery outcomes cannot be recorded together; "
                              "recording them one by one", extra={"error": error_name(error)})
                    return self._record_alone(outcomes, rule_set)
                log.warning("recording delivery outcomes failed; trying again",
                            extra={"error": error_name(error)})
                if self._stop.wait(RECORD_RETRY_SECONDS):
                    # Shutting down with the store away: the claims lapse, and the
                    # deliveries are sent again (same keys) by the next engine.
                    return None

    def _record_alone(self, outcomes: _Outcomes, rule_set: RuleSet) -> Recorded:
        """Each outcome in a transaction of its own. One the store still refuses is
        recorded as a failure of its delivery that says so, under the same policy; if
        even that cannot be, its claim lapses and it is sent again with the same key."""
        recorded = Recorded([], [], [])
        for attempt in outcomes.attempts:
            try:
                part = self._outbox.record([attempt], [], rule_set)
            except Exception as error:
                failure = attempt.failure
                refused = DeliveryFailed(
                    failure.error_class if failure else ErrorClass.TRANSPORT_ERROR,
                    f"the outcome could not be stored ({error_name(error)})")
                try:
                    part = self._outbox.record([Attempt(attempt.claimed, attempt.at, refused)],
                                               [], rule_set)
                except Exception as again:
                    log.error("a delivery outcome cannot be recorded; its claim will lapse",
                              extra={"delivery_id": attempt.claimed.id,
                                     "error": error_name(again)})
                    continue
            recorded.extend(part)
        try:
            self._outbox.record([], outcomes.unsent, rule_set)
        except Exception as error:  # they were claimed, not tried: their claims lapse
            log.error("claimed deliveries cannot be given back; their claims will lapse",
                      extra={"error": error_name(error)})
        return recorded


def _by_rule_set(taken: list[_Outcomes]) -> list[tuple[RuleSet, _Outcomes]]:
    """The outcomes handed in since the last transaction, merged per rule-set version
    (one, but for a publication in between), in the order they came."""
    merged: dict[int, tuple[RuleSet, _Outcomes]] = {}
    for outcomes in taken:
        _, into = merged.setdefault(id(outcomes.rule_set),
                                    (outcomes.rule_set, _Outcomes([], [], outcomes.rule_set)))
        into.attempts.extend(outcomes.attempts)
        into.unsent.extend(outcomes.unsent)
    return list(merged.values())


def _count(recorded: Recorded, report: Report) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    for attempt in recorded.delivered:
        claimed = attempt.claimed
        counts["delivered", claimed.destination] += 1
        report("receive_to_delivered", claimed.destination,
               max(0.0, (attempt.at - claimed.received_at).total_seconds()))
    for attempt in recorded.retried:
        counts["retried", attempt.claimed.destination] += 1
    for attempt in recorded.dead_lettered:
        counts["dead_lettered", attempt.claimed.destination] += 1
        counts["exceptions", attempt.claimed.destination] += 1
    for (metric, destination), count in counts.items():
        report(metric, destination, count)
