"""Pipeline and delivery workers in processes of their own, so that the pure stages
(parse, normalise, route, minimise, encode) and the sinks never compete with the
listeners and the journal for one interpreter lock: ingest keeps its pace however slow
a stage or a destination gets.

Each pipeline worker owns a lane, a share of the journal picked by patient (see
``Pipeline(lane=...)``), so workers never take the same message and the messages of
one patient are routed in the order they arrived. A delivery process runs the delivery
threads; the outbox's claims keep their order. A worker that dies is started again.
Workers report their counts to this process, which serves /metrics.

Nothing is shared between processes that a killed worker could leave locked: each
worker has its own pipe for reports, and it is stopped with SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess

from engine import metrics

log = logging.getLogger("switchboard.pipeline")
RESTART_CHECK_SECONDS = 1.0
PARENT_CHECK_SECONDS = 1.0
WORKER_NICENESS = 10
_SPAWN = multiprocessing.get_context("spawn")  # no fork: the parent runs threads


@dataclass(frozen=True)
class DeliveryJob:
    """What a delivery process runs: one worker claiming ``batch`` deliveries at a time,
    sending up to ``concurrency`` chains at once, its claims lasting ``lease`` seconds."""

    concurrency: int
    batch: int
    lease: float


def worker_main(database_url: str, lane: int, lanes: int, reports: Connection,
                delivery: DeliveryJob | None = None) -> None:
    """A worker process: route its lane (or deliver, given ``delivery``) until SIGTERM,
    or until its parent is gone."""
    from engine.delivery_workers import DeliveryWorker
    from engine.log_format import configure_logging
    from engine.model.schemas import fast_check
    from engine.outbox import Outbox
    from engine.pipeline import Pipeline
    from engine.store.database import open_engine

    # Ingest first: a sender waits for its ACK, while the pipeline's queue only grows
    # for a while. On a busy machine the listeners and the journal get the CPU first.
    os.nice(WORKER_NICENESS)
    stop = threading.Event()
    # The parent decides when to stop: Ctrl-C reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _number, _frame: stop.set())
    parent = os.getppid()

    def watch_parent() -> None:
        while not stop.wait(PARENT_CHECK_SECONDS):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    configure_logging()
    engine = open_engine(database_url, pool_pre_ping=True)

    sending = threading.Lock()  # delivery threads beat from several threads

    def report(metric: str, label: str, value: float) -> None:
        with sending:
            reports.send((metric, label, value))

    try:
        if delivery is None:
            # The canonical check is compiled now, not on the worker's first message:
            # a worker reaches its working size before it takes any work.
            fast_check("canonical")
            Pipeline(engine, report=report, lane=(lane, lanes)).run_until(stop)
        else:
            outbox = Outbox(engine, lease=delivery.lease)
            if engine.dialect.name == "sqlite":
                # One delivery process per SQLite store: claims still open were this
                # process's before it died, and need not wait for their lease to lapse.
                outbox.release_claims()
            DeliveryWorker(engine, outbox=outbox, batch=delivery.batch, report=report,
                           concurrency=delivery.concurrency).run_until(stop)
    finally:
        engine.dispose()
        reports.close()


class WorkerPool:
    """``count`` worker processes over one store, kept running until ``stop``: pipeline
    lanes, or with ``delivery`` that many delivery processes."""

    def __init__(self, database_url: str, count: int, delivery: DeliveryJob | None = None,
                 report: Callable[[str, str, float], None] = metrics.report) -> None:
        """``report`` takes the workers' reports in this process."""
        self._url = database_url
        self._report = report
        self._count = count
        self._delivery = delivery
        self._kind = "pipeline" if delivery is None else "delivery"
        self._processes: list[SpawnProcess | None] = [None] * count
        self._readers: dict[Connection, int] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        for lane in range(self._count):
            self._spawn(lane)
        for target, name in ((self._drain, "pipeline-reports"),
                             (self._supervise, "pipeline-supervisor")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def alive(self) -> bool:
        return all(p is not None and p.is_alive() for p in self._processes)

    def stop(self, grace: float = 10.0) -> None:
        """Ask every worker to finish its batch and exit; kill those that do not."""
        self._stopping.set()
        for process in self._processes:
            if process is not None and process.is_alive():
                process.terminate()  # SIGTERM: the worker finishes its batch
        for process in self._processes:
            if process is None:
                continue
            process.join(grace)
            if process.is_alive():
                log.warning(f"{self._kind} worker did not stop in time; killing it",
                            extra={"pid": process.pid})
                process.kill()
                process.join(5)
        for thread in self._threads:
            thread.join(grace)

    def _spawn(self, lane: int) -> None:
        reader, writer = _SPAWN.Pipe(duplex=False)
        process = _SPAWN.Process(target=worker_main, name=f"switchboard-{self._kind}-{lane}",
                                 args=(self._url, lane, self._count, writer, self._delivery),
                                 daemon=True)
        process.start()
        writer.close()  # the worker holds the only writer: its exit ends the pipe
        with self._lock:
            self._readers[reader] = lane
        self._processes[lane] = process
        log.info(f"{self._kind} worker started", extra={"lane": lane, "pid": process.pid})

    def _supervise(self) -> None:
        while not self._stopping.wait(RESTART_CHECK_SECONDS):
            for lane, process in enumerate(self._processes):
                if process is not None and not process.is_alive() and not self._stopping.is_set():
                    log.error(f"{self._kind} worker exited; starting it again",
                              extra={"lane": lane, "exit_code": process.exitcode})
                    self._spawn(lane)

    def _drain(self) -> None:
        while True:
            with self._lock:
                readers = list(self._readers)
            if not readers:
                if self._stopping.is_set():
                    return
                self._stopping.wait(0.1)
                continue
            for reader in wait(readers, timeout=0.5):
                assert isinstance(reader, Connection)
                try:
                    self._report(*reader.recv())
                except (EOFError, OSError):  # that worker has exited
                    with self._lock:
                        self._readers.pop(reader, None)
                    reader.close()
