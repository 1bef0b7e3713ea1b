"""Delivery workers: a worker claims a batch of deliveries from the outbox, sends its
chains through their destinations' sinks (up to ``concurrency`` chains at once, each in
order, so a slow destination does not hold up the others), and records the outcomes
in one transaction.

Each sending thread keeps one sink per destination (an HTTP keep-alive connection, an
MLLP connection), built from the catalog entry of the rule-set version it runs; when a
new version is published, the old sinks are closed and new ones built. An outcome that cannot
be recorded (the store is down) is kept and recorded again until it is: the destination
has the message, and forgetting that would send it twice.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from engine import metrics
from engine.connectors import ConnectorError
from engine.connectors.sink import DeliveryFailed, Sink, sink_factory
from engine.journal import now_utc
from engine.outbox import Attempt, Claimed, Outbox, Recorded
from engine.pipeline import Report, Stop
from engine.progress import Heart
from engine.rule_versions import RuleSetCache, Running
from engine.rules.exception_policy import ErrorClass
from engine.store.availability import error_name, store_unavailable

log = logging.getLogger("switchboard.delivery")
RECORD_RETRY_SECONDS = 1.0


class Sinks:
    """The sinks of one worker, by destination, for one rule-set version at a time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._version: int | None = None
        self._sinks: dict[str, Sink] = {}

    def for_destination(self, running: Running, destination: str) -> Sink:
        if running.version != self._version:
            self.close()
            self._version = running.version
        sink = self._sinks.get(destination)
        if sink is None:
            connection = running.rule_set.connections.get(destination)
            if connection is None:
                raise DeliveryFailed(
                    ErrorClass.VALIDATION,
                    f"'{destination}' is not in the catalog of rule-set version "
                    f"{running.version}", hint="Add it to the catalog, then retry the item")
            try:
                sink = sink_factory(str(connection.transport))(connection, self._engine)
            except ConnectorError as error:
                raise DeliveryFailed(ErrorClass.VALIDATION, str(error)) from None
            self._sinks[destination] = sink
        return sink

    def close(self) -> None:
        for sink in self._sinks.values():
            sink.close()
        self._sinks.clear()


@dataclass
class _Batch:
    attempts: list[Attempt]
    unsent: list[Claimed]


class DeliveryWorker:
    def __init__(self, engine: Engine, rule_sets: RuleSetCache | None = None,
                 outbox: Outbox | None = None, batch: int = 100,
                 report: Report = metrics.report, concurrency: int = 1) -> None:
        self._engine = engine
        self._outbox = outbox or Outbox(engine)
        self._rule_sets = rule_sets or RuleSetCache(engine)
        self._batch = batch
        self._report = report
        self._local = threading.local()
        self._every_sinks: list[Sinks] = []
        self._sinks_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(concurrency, "delivery") if concurrency > 1 else None
        self.heart = Heart("delivery", report)

    def run_once(self, stop: Stop | None = None) -> int:
        """Claim, send and record one batch; returns how many deliveries were tried."""
        running = self._rule_sets.current()
        chains = self._outbox.claim(self._batch)
        if not chains:
            return 0
        if self._pool is None or len(chains) == 1:
            sent = [self._send_chain(running, chain) for chain in chains]
        else:
            sent = list(self._pool.map(lambda chain: self._send_chain(running, chain), chains))
        batch = _Batch([a for part in sent for a in part.attempts],
                       [c for part in sent for c in part.unsent])
        recorded = self._record(batch, running, stop)
        if recorded is not None:
            _count(recorded, self._report)
        return len(batch.attempts)

    def run_until(self, stop: Stop, idle_wait: float = 0.05) -> None:
        try:
            while not stop.is_set():
                try:
                    tried = self.run_once(stop)
                    self.heart.beat(self._rule_sets.current().version)
                    if tried == 0:
                        stop.wait(idle_wait)
                except SQLAlchemyError:  # the store is down: claims wait for it
                    log.warning("delivery pass failed; retrying", exc_info=True)
                    stop.wait(RECORD_RETRY_SECONDS)
                except Exception:  # a defect must not end delivery for everyone
                    log.exception("delivery pass failed; retrying")
                    stop.wait(RECORD_RETRY_SECONDS)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the sending threads and close every sink's connection."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._sinks_lock:
            for sinks in self._every_sinks:
                sinks.close()

    def _sinks(self) -> Sinks:
        """This thread's sinks: a sink is used by one thread at a time."""
        sinks: Sinks | None = getattr(self._local, "sinks", None)
        if sinks is None:
            sinks = self._local.sinks = Sinks(self._engine)
            with self._sinks_lock:
                self._every_sinks.append(sinks)
        return sinks

    def _send_chain(self, running: Running, chain: list[Claimed]) -> _Batch:
        """Send in order; after a failure, the rest of the chain goes back untried."""
        sent = _Batch([], [])
        for index, claimed in enumerate(chain):
            failure = self._send(running, claimed)
            sent.attempts.append(Attempt(claimed, now_utc(), failure))
            # A slow destination makes a long pass: each attempt is progress.
            self.heart.beat(running.version)
            if failure is not None:
                sent.unsent.extend(chain[index + 1:])
                break
        return sent

    def _send(self, running: Running, claimed: Claimed) -> DeliveryFailed | None:
        try:
            self._sinks().for_destination(running, claimed.destination).send(
                claimed.outbound())
        except DeliveryFailed as failure:
            return failure
        except Exception as error:  # a defect in a sink must not kill the worker
            log.exception("sink failed", extra={"connection": claimed.destination})
            return DeliveryFailed(ErrorClass.TRANSPORT_ERROR,
                                  f"internal error in the sink ({type(error).__name__})")
        return None

    def _record(self, batch: _Batch, running: Running, stop: Stop | None) -> Recorded | None:
        waiting = stop or threading.Event()
        while True:
            try:
                return self._outbox.record(batch.attempts, batch.unsent, running.rule_set)
            except Exception as error:
                if not store_unavailable(error):
                    # One outcome the store refuses must not hold the batch's others
                    # (nor the line) in a loop of retries.
                    log.error("a batch's delivery outcomes cannot be recorded together; "
                              "recording them one by one", extra={"error": error_name(error)})
                    return self._record_alone(batch, running)
                log.warning("recording delivery outcomes failed; trying again",
                            extra={"error": error_name(error)})
                if waiting.wait(RECORD_RETRY_SECONDS):
                    # Shutting down with the store away: the claims lapse, and the
                    # deliveries are sent again (same keys) by the next engine.
                    return None

    def _record_alone(self, batch: _Batch, running: Running) -> Recorded:
        """Each outcome in a transaction of its own. One the store still refuses is
        recorded as a failure of its delivery that says so, under the same policy; if
        even that cannot be, its claim lapses and it is sent again with the same key."""
        recorded = Recorded([], [], [])
        rule_set = running.rule_set
        for attempt in batch.attempts:
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
            recorded.delivered.extend(part.delivered)
            recorded.retried.extend(part.retried)
            recorded.dead_lettered.extend(part.dead_lettered)
        try:
            self._outbox.record([], batch.unsent, rule_set)
        except Exception as error:  # they were claimed, not tried: their claims lapse
            log.error("claimed deliveries cannot be given back; their claims will lapse",
                      extra={"error": error_name(error)})
        return recorded


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


class DeliveryThreads:
    """A delivery worker on a thread of this process (``serve`` without worker
    processes)."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self._worker = worker
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        thread = threading.Thread(target=self._worker.run_until, args=(self._stop,),
                                  name="delivery", daemon=True)
        thread.start()
        self._threads.append(thread)

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def stop(self, grace: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(grace)
