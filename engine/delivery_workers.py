"""Delivery workers: a worker claims a batch of deliveries from the outbox and sends
its chains through their destinations' sinks (up to ``concurrency`` chains at once,
each in order, so a slow destination does not hold up the others). Each outcome is
recorded as it happens (:mod:`engine.delivery_outcomes`), and the claim's lease is
renewed while its chains are being sent (:mod:`engine.claim_leases`).

Each sending thread keeps one sink per destination (an HTTP keep-alive connection, an
MLLP connection), built from the catalog entry of the rule-set version it runs; when a
new version is published, the old sinks are closed and new ones built.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from engine import metrics
from engine.claim_leases import ClaimLeases
from engine.connectors import ConnectorError
from engine.connectors.sink import DeliveryFailed, Sink, sink_factory
from engine.delivery_outcomes import RECORD_RETRY_SECONDS, OutcomeRecorder
from engine.journal import now_utc
from engine.outbox import Attempt, Claimed, Outbox
from engine.pipeline import Report, Stop
from engine.progress import Heart
from engine.rule_versions import RuleSetCache, Running
from engine.rules.exception_policy import ErrorClass

log = logging.getLogger("switchboard.delivery")
CLOSE_GRACE_SECONDS = 10.0


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


class DeliveryWorker:
    def __init__(self, engine: Engine, rule_sets: RuleSetCache | None = None,
                 outbox: Outbox | None = None, batch: int = 100,
                 report: Report = metrics.report, concurrency: int = 1) -> None:
        self._engine = engine
        self._outbox = outbox or Outbox(engine)
        self._rule_sets = rule_sets or RuleSetCache(engine)
        self._batch = batch
        self._local = threading.local()
        self._every_sinks: list[Sinks] = []
        self._sinks_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(concurrency, "delivery") if concurrency > 1 else None
        self._leases = ClaimLeases(self._outbox)
        self._outcomes = OutcomeRecorder(self._outbox, report)
        self.heart = Heart("delivery", report)

    def run_once(self, stop: Stop | None = None) -> int:
        """Claim, send and record one batch; returns how many deliveries were tried."""
        running = self._rule_sets.current()
        claimed_at = now_utc()
        chains = self._outbox.claim(self._batch, now=claimed_at)
        if not chains:
            return 0
        token = chains[0][0].claim_token
        self._leases.hold(token, claimed_at)
        try:
            if self._pool is None or len(chains) == 1:
                tried = sum(self._send_chain(running, chain) for chain in chains)
            else:
                tried = sum(self._pool.map(lambda chain: self._send_chain(running, chain),
                                           chains))
            self._outcomes.flush(stop)
        finally:
            self._leases.release(token)
        return tried

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

    def stop_renewing(self) -> None:
        """Let this worker's claims lapse, as a process that dies does: another engine
        may then take over what it has not recorded."""
        self._leases.stop()

    def close(self) -> None:
        """Stop the sending threads, record what they finished, stop renewing claims
        and close every sink's connection."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        # What the sending threads finished goes on record, unless the store is away
        # for long: then those claims lapse, and their deliveries are sent again.
        self._outcomes.flush(limit=CLOSE_GRACE_SECONDS)
        self._outcomes.close()
        self._leases.stop()
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

    def _send_chain(self, running: Running, chain: list[Claimed]) -> int:
        """Send in order, handing each outcome to the recorder as it comes; after a
        failure, or once the claim may lapse, the rest of the chain goes back untried.
        Returns how many were tried."""
        for index, claimed in enumerate(chain):
            if not self._leases.holds(claimed.claim_token):
                # Another engine may take the chain over any moment: sending on would
                # race it, and could reorder what the destination sees.
                log.warning("a delivery claim is about to lapse; its chain goes back",
                            extra={"delivery_id": claimed.id,
                                   "connection": claimed.destination})
                self._outcomes.add([], chain[index:], running.rule_set)
                return index
            failure = self._send(running, claimed)
            attempt = Attempt(claimed, now_utc(), failure)
            # A slow destination makes a long pass: each attempt is progress.
            self.heart.beat(running.version)
            if failure is not None:
                self._outcomes.add([attempt], chain[index + 1:], running.rule_set)
                return index + 1
            self._outcomes.add([attempt], [], running.rule_set)
        return len(chain)

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
