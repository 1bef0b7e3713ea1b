"""Running Switchboard: ``engine`` (MLLP listeners for the catalog's inbound
connections, pipeline workers, the probes on a port of their own), ``web`` (API, HTTP
ingest, the probes) and ``serve`` (both in one process, the embedded default). Given a
health port, ``web`` and ``serve`` serve the probes there and not on the API's port.

Shutdown is graceful on SIGINT/SIGTERM: listeners stop accepting and answer what is in
flight, the pipeline finishes its current message, then the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.serving import BaseWSGIServer, make_server

from engine import metrics
from engine.connectors.file import DropFolder, DropFolderConfig
from engine.connectors.mllp.application_ack import ApplicationAcks
from engine.connectors.mllp.listener import MllpListener, MllpListenerConfig
from engine.delivery_workers import DeliveryThreads, DeliveryWorker
from engine.errors import SwitchboardError
from engine.escalation import Escalator
from engine.indexed_paths import IndexedPaths
from engine.ingest import Ingestor
from engine.journal import Journal, now_utc
from engine.outbox import Outbox
from engine.pipeline import Pipeline
from engine.pipeline_workers import DeliveryJob, WorkerPool
from engine.progress import PROGRESS
from engine.rollup_thinning import RollupThinning
from engine.rule_versions import RuleSetCache, bootstrap, exception_owner, source_charset
from engine.rules.catalog_entry import Connection, FileEndpoint, MllpEndpoint
from engine.rules.catalog_secrets import missing_secrets
from engine.store.database import open_engine, reader
from engine.store.migrate import upgrade
from engine.store.models import Delivery, JournalEntry
from engine.throughput_rollup import ThroughputRecorder

log = logging.getLogger("switchboard.service")


@dataclass(frozen=True)
class Settings:
    database_url: str
    config_root: Path
    host: str = "127.0.0.1"
    web_port: int = 8080
    # The probes' own port (and address, default ``host``): web and serve then answer
    # them only there; None keeps them on the web port. The engine alone needs one.
    health_port: int | None = None
    health_host: str | None = None
    # Worker processes for the pipeline; 0 runs it on a thread of this process.
    pipeline_workers: int = 2
    # Chains of deliveries sent at once (to different destinations or patients); 0
    # leaves the outbox queued.
    delivery_workers: int = 4
    # Seconds a claimed delivery waits for its outcome before it may be sent again.
    delivery_lease: float = 120.0
    # Deliveries a worker claims at once: fewer spread a small backlog over more engines.
    delivery_batch: int = 100
    # Listen here instead of on the catalog's port (several engines on one host).
    mllp_port_override: int | None = None
    # A pipeline or delivery part silent this long while work waits is stalled, and
    # the engine is not ready.
    stall_after: float = 60.0


# Where ``switchboard engine`` serves its probes unless told.
ENGINE_HEALTH_PORT = 8081
# The key of the PostgreSQL advisory lock that serialises store preparation: "SBSTART".
PREPARE_LOCK = 0x5342_5354_4152_5400


def prepare_store(settings: Settings) -> Engine:
    """Open the store, bring its schema up to date and, on the first start, publish
    the shipped configuration as version 1. Engines and web processes that start
    together on one PostgreSQL take turns, so that one migrates and bootstraps and the
    others find it done (on SQLite, each step's write lock does the same)."""
    engine = open_engine(settings.database_url, pool_pre_ping=True)
    with _preparing_alone(engine):
        upgrade(engine)
        created = bootstrap(engine, settings.config_root)
    if created:
        log.info("published the shipped configuration", extra={"rule_set_version": created})
    return engine


@contextmanager
def _preparing_alone(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PREPARE_LOCK})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PREPARE_LOCK})
            connection.commit()


class EngineProcess:
    """Listeners and pipeline workers over one store."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._pool: WorkerPool | None = None
        self._delivery: DeliveryThreads | None = None
        self._delivery_pool: WorkerPool | None = None
        self._escalator = Escalator(engine)
        # The charts' history: what this engine's parts count, and the outbox's queue.
        self._rollup = ThroughputRecorder(engine, sample_queue=True)
        self._report = self._rollup.reporting(metrics.report)
        self._thinning = RollupThinning(engine)
        self._application_acks = ApplicationAcks(engine)
        self._journal: Journal | None = None
        self.listeners: dict[str, MllpListener] = {}
        self.folders: dict[str, DropFolder] = {}
        self._started_at = time.monotonic()

    def flush_rollups(self) -> None:
        """Write the throughput counts this process holds in memory now, rather than at
        the next flush (every 5 s): for a chart that must show them at once."""
        self._rollup.flush()

    async def start(self) -> None:
        self._started_at = time.monotonic()
        rule_sets = RuleSetCache(self._engine)
        running = rule_sets.current()
        _warn_of_missing_secrets(running.rule_set.connections.values())
        self._journal = Journal(self._engine, exception_owner(rule_sets),
                                charsets=source_charset(rule_sets))
        ingestor = Ingestor(self._journal, self._rollup)
        self._application_acks.start()
        for connection in running.rule_set.connections.values():
            if _is_source(connection, "mllp"):
                listener = MllpListener(ingestor, connection.id, self._listener_config(connection),
                                        application_acks=self._application_acks)
                await listener.start()
                self.listeners[connection.id] = listener
                log.info("listening", extra={"connection": connection.id, "port": listener.port})
            elif _is_source(connection, "file"):
                folder = DropFolder(ingestor, connection.id, _folder_config(connection))
                await folder.start()
                self.folders[connection.id] = folder
        metrics.QUEUE_DEPTH.set_function(lambda: waiting_count(self._engine))
        if self._settings.pipeline_workers > 0:
            self._pool = WorkerPool(self._settings.database_url, self._settings.pipeline_workers,
                                    report=self._report)
            self._pool.start()
        else:
            pipeline = Pipeline(self._engine, report=self._report)
            worker = threading.Thread(target=pipeline.run_until, args=(self._stop,),
                                      name="pipeline", daemon=True)
            worker.start()
            self._workers.append(worker)
        self._start_delivery()
        self._escalator.start()
        self._rollup.start()
        self._thinning.start()

    def _start_delivery(self) -> None:
        settings = self._settings
        if settings.delivery_workers <= 0:
            return
        outbox = Outbox(self._engine, lease=settings.delivery_lease)
        if self._engine.dialect.name == "sqlite":
            # One engine per SQLite file: a claim still open was this engine's own,
            # cut off by a crash, and it waits for no lease to lapse.
            released = outbox.release_claims()
            if released:
                log.warning("deliveries in flight at the last stop go again",
                            extra={"count": released})
        if settings.pipeline_workers > 0:
            # Like the pipeline, in a process of its own: sinks never slow ingest.
            self._delivery_pool = WorkerPool(settings.database_url, 1, DeliveryJob(
                settings.delivery_workers, settings.delivery_batch, settings.delivery_lease),
                report=self._report)
            self._delivery_pool.start()
            return
        self._delivery = DeliveryThreads(DeliveryWorker(
            self._engine, outbox=outbox, batch=settings.delivery_batch,
            concurrency=settings.delivery_workers, report=self._report))
        self._delivery.start()

    def readiness(self) -> dict[str, Callable[[], str | None]]:
        """Checks for /readyz: each gives why the engine cannot make progress, or None."""
        return {"listeners": self._listeners_problem, "journal": self._journal_problem,
                "pipeline": self._pipeline_problem, "delivery": self._delivery_problem}

    def parts(self) -> list[str]:
        """The parts that beat (engine.progress): pipeline lanes, then delivery."""
        settings = self._settings
        parts = ([f"pipeline-{lane}" for lane in range(settings.pipeline_workers)]
                 if self._pool is not None else ["pipeline"] if self._workers else [])
        if self._delivery is not None or self._delivery_pool is not None:
            parts.append("delivery")
        return parts

    def running_version(self) -> int | None:
        """The rule-set version every part of this engine routes and delivers by."""
        return PROGRESS.running_version(self.parts())

    def running_versions(self) -> dict[str, int]:
        """The rule-set version each part of this engine runs, as last reported."""
        versions = PROGRESS.versions()
        return {part: versions[part] for part in self.parts() if part in versions}

    def _listeners_problem(self) -> str | None:
        down = sorted(name for name, listener in self.listeners.items()
                      if not _listening(listener))
        return f"MLLP listener not listening: {', '.join(down)}" if down else None

    def _journal_problem(self) -> str | None:
        return self._journal.writer_problem() if self._journal is not None else None

    def _pipeline_problem(self) -> str | None:
        alive = (self._pool.alive() if self._pool is not None
                 else all(worker.is_alive() for worker in self._workers))
        if not alive:
            return "a pipeline worker is not running (it is being started again)"
        return self._stalled([p for p in self.parts() if p.startswith("pipeline")],
                             lambda: waiting_count(self._engine), "messages waiting to be routed")

    def _delivery_problem(self) -> str | None:
        if self._delivery_pool is not None:
            alive = self._delivery_pool.alive()
        else:
            alive = self._delivery is None or self._delivery.alive()
        if not alive:
            return "the delivery worker is not running (it is being started again)"
        return self._stalled([p for p in self.parts() if p == "delivery"],
                             lambda: due_count(self._engine), "deliveries due")

    def _stalled(self, parts: list[str], waiting: Callable[[], float],
                 what: str) -> str | None:
        """Why ``parts`` are stalled: silent past ``stall_after`` while work waits."""
        limit = self._settings.stall_after
        since_start = time.monotonic() - self._started_at
        silent = {part: PROGRESS.silent_for(part) for part in parts}
        quiet = {part: since_start if seconds is None else seconds
                 for part, seconds in silent.items()}
        stalled = sorted(part for part, seconds in quiet.items() if seconds > limit)
        if not stalled:
            return None
        count = waiting()
        if not count:  # NaN (store down) is reported by the database check
            return None
        longest = max(quiet[part] for part in stalled)
        return (f"{', '.join(stalled)}: no progress for {longest:.0f} s while work waits "
                f"({what}: {count:.0f})")

    async def stop(self, grace: float = 10.0) -> None:
        for part in self.parts():
            PROGRESS.forget(part)
        for listener in self.listeners.values():
            await listener.stop(grace)
        await self._application_acks.stop()
        for folder in self.folders.values():
            await folder.stop(grace)
        self._stop.set()
        for worker in self._workers:
            await asyncio.to_thread(worker.join, grace)
        if self._delivery is not None:
            await asyncio.to_thread(self._delivery.stop, grace)
        if self._delivery_pool is not None:
            await asyncio.to_thread(self._delivery_pool.stop, grace)
        await asyncio.to_thread(self._escalator.stop)
        await asyncio.to_thread(self._thinning.stop)
        if self._pool is not None:
            await asyncio.to_thread(self._pool.stop, grace)
        if self._journal is not None:
            await asyncio.to_thread(self._journal.close)
        # Last: every part has stopped, and its counts have reached this process.
        await asyncio.to_thread(self._rollup.close)

    def _listener_config(self, connection: Connection) -> MllpListenerConfig:
        endpoint = connection.endpoint
        assert isinstance(endpoint, MllpEndpoint)
        port = self._settings.mllp_port_override
        config: dict[str, Any] = {
            "host": endpoint.host, "port": endpoint.port if port is None else port,
            "allowed_peers": list(endpoint.allowed_peers),
        }
        if endpoint.max_frame_bytes is not None:
            config["max_frame_bytes"] = endpoint.max_frame_bytes
        if endpoint.idle_timeout is not None:
            config["idle_timeout"] = endpoint.idle_timeout
        return MllpListenerConfig.from_mapping(config)


def waiting_count(engine: Engine) -> float:
    """Journaled messages the pipeline has not taken yet; NaN when the store is down, so
    /metrics still answers during an outage."""
    try:
        with reader(engine).connect() as connection:
            return float(connection.scalar(
                select(func.count()).select_from(JournalEntry).where(
                    JournalEntry.status == "received")) or 0)
    except SQLAlchemyError:
        return math.nan


def due_count(engine: Engine) -> float:
    """Deliveries a worker could send now; NaN when the store is down."""
    moment = now_utc()
    try:
        with reader(engine).connect() as connection:
            return float(connection.scalar(
                select(func.count()).select_from(Delivery).where(or_(
                    (Delivery.status == "pending") & Delivery.next_attempt_at.is_(None),
                    Delivery.status.in_(("pending", "retrying", "in_flight"))
                    & (Delivery.next_attempt_at <= moment)))) or 0)
    except SQLAlchemyError:
        return math.nan


def _listening(listener: MllpListener) -> bool:
    try:
        return listener.port > 0
    except SwitchboardError:
        return False


def _warn_of_missing_secrets(connections: Iterable[Connection]) -> None:
    """Name each secret variable the catalog names and this process lacks, now rather
    than at the first delivery that fails or the first sender refused for it."""
    for missing in missing_secrets(connections, os.environ):
        log.warning("a secret variable the catalog names is not set",
                    extra={"connection": missing.connection, "variable": missing.variable,
                           "location": missing.location, "direction": missing.direction})


def _is_source(connection: Connection, transport: str) -> bool:
    return connection.transport == transport and connection.direction in (
        "inbound", "bidirectional")


def _folder_config(connection: Connection) -> DropFolderConfig:
    endpoint = connection.endpoint
    assert isinstance(endpoint, FileEndpoint)
    return DropFolderConfig.from_mapping({"directory": endpoint.directory,
                                          "pattern": endpoint.pattern})


def start_web(settings: Settings, port: int, process: EngineProcess | None,
              health_only: bool = False) -> BaseWSGIServer:
    """Serve the web app (or only its health routes) on a background thread; its
    /readyz answers for ``process`` too."""
    app = _web_app(settings, process, health_only)
    host = (settings.health_host or settings.host) if health_only else settings.host
    server = make_server(host, port, app, threaded=True)
    _serve_in_background(server, "probes" if health_only else "web")
    return server


def start_web_and_probes(settings: Settings, process: EngineProcess | None
                         ) -> list[BaseWSGIServer]:
    """The web app on the web port and, given a health port, its probes there: one app on
    two listeners, which it tells apart by the port a request arrived on."""
    if settings.health_port is None:
        return [start_web(settings, settings.web_port, process)]
    app = _web_app(settings, process, False)
    web = make_server(settings.host, settings.web_port, app, threaded=True)
    try:
        probes = make_server(settings.health_host or settings.host, settings.health_port,
                             app, threaded=True)
    except OSError:
        web.server_close()
        _close_app(web)
        raise
    # Known before either serves: a port given as 0 is bound by now.
    app.config["HEALTH_PORT"] = probes.server_port
    _serve_in_background(web, "web")
    _serve_in_background(probes, "probes")
    return [web, probes]


def _web_app(settings: Settings, process: EngineProcess | None, health_only: bool) -> Any:
    from admin import create_app, create_health_app

    factory = create_health_app if health_only else create_app
    # Configured as gunicorn's app is (instance file, SWITCHBOARD_* variables: LDAP
    # sign-in, the console, the probe token), but on this process's store, rule files
    # and probe port.
    return factory(fixed={
        "DATABASE_URL": settings.database_url,
        "CONFIG_ROOT": str(settings.config_root),
        "HEALTH_PORT": None,
        "SWITCHBOARD_READINESS_CHECKS": process.readiness() if process else {},
        "SWITCHBOARD_RUNNING_VERSION": process.running_version if process else None,
        "SWITCHBOARD_RUNNING_VERSIONS": process.running_versions if process else None})


def _serve_in_background(server: BaseWSGIServer, role: str) -> None:
    threading.Thread(target=server.serve_forever, name=f"{role}-{server.server_port}",
                     daemon=True).start()
    log.info("web listening", extra={"port": server.server_port, "serves": role})


def _close_app(server: BaseWSGIServer) -> None:
    extensions = server.app.extensions  # type: ignore[attr-defined]
    if "switchboard.previews" in extensions:
        # A preview cut short goes back to the queue for the next start.
        extensions["switchboard.previews"].stop()
    extensions["switchboard"].close()


async def run(settings: Settings, *, engine_part: bool, web_part: bool,
              started: Callable[[EngineProcess | None, list[BaseWSGIServer]], None] | None = None,
              stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set or a termination signal arrives."""
    # A path the setting cannot mean stops the start here, not a worker at each restart.
    IndexedPaths.configured()
    if web_part and settings.web_port and settings.health_port == settings.web_port:
        # The app tells the probes from the API by the port a request arrived on.
        raise SwitchboardError(f"the health port must differ from the web port "
                               f"({settings.web_port})")
    store = prepare_store(settings)
    stop = stop or asyncio.Event()
    _on_signals(stop)
    process = EngineProcess(store, settings) if engine_part else None
    servers: list[BaseWSGIServer] = []
    try:
        if process is not None:
            await process.start()
        if web_part:
            servers.extend(start_web_and_probes(settings, process))
        else:
            servers.append(start_web(settings, ENGINE_HEALTH_PORT if settings.health_port
                                     is None else settings.health_port, process, True))
        if started:
            started(process, servers)
        await stop.wait()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        # The web app and its probes' listener share one app: closed once.
        for server in {id(server.app): server for server in servers}.values():
            _close_app(server)
        if process is not None:
            await process.stop()
        store.dispose()


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(number, stop.set)
