"""Running Switchboard: ``engine`` (MLLP listeners for the catalog's inbound
connections, pipeline workers, health on its own port), ``web`` (API, HTTP ingest,
health) and ``serve`` (both in one process, the embedded default).

Shutdown is graceful on SIGINT/SIGTERM: listeners stop accepting and answer what is in
flight, the pipeline finishes its current message, then the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.serving import BaseWSGIServer, make_server

from engine import metrics
from engine.connectors.file import DropFolder, DropFolderConfig
from engine.connectors.mllp.application_ack import ApplicationAcks
from engine.connectors.mllp.listener import MllpListener, MllpListenerConfig
from engine.delivery_workers import DeliveryThreads, DeliveryWorker
from engine.errors import SwitchboardError
from engine.escalation import Escalator
from engine.ingest import Ingestor
from engine.journal import Journal
from engine.outbox import Outbox
from engine.pipeline import Pipeline
from engine.pipeline_workers import DeliveryJob, WorkerPool
from engine.rule_versions import RuleSetCache, bootstrap, exception_owner
from engine.rules.catalog_entry import Connection, FileEndpoint, MllpEndpoint
from engine.store.database import open_engine, reader
from engine.store.migrate import upgrade
from engine.store.models import JournalEntry

log = logging.getLogger("switchboard.service")


@dataclass(frozen=True)
class Settings:
    database_url: str
    config_root: Path
    host: str = "127.0.0.1"
    web_port: int = 8080
    engine_health_port: int = 8081
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
        self._application_acks = ApplicationAcks(engine)
        self._journal: Journal | None = None
        self.listeners: dict[str, MllpListener] = {}
        self.folders: dict[str, DropFolder] = {}

    async def start(self) -> None:
        rule_sets = RuleSetCache(self._engine)
        running = rule_sets.current()
        self._journal = Journal(self._engine, exception_owner(rule_sets))
        ingestor = Ingestor(self._journal)
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
            self._pool = WorkerPool(self._settings.database_url, self._settings.pipeline_workers)
            self._pool.start()
        else:
            worker = threading.Thread(target=Pipeline(self._engine).run_until, args=(self._stop,),
                                      name="pipeline", daemon=True)
            worker.start()
            self._workers.append(worker)
        self._start_delivery()
        self._escalator.start()

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
                settings.delivery_workers, settings.delivery_batch, settings.delivery_lease))
            self._delivery_pool.start()
            return
        self._delivery = DeliveryThreads(DeliveryWorker(
            self._engine, outbox=outbox, batch=settings.delivery_batch,
            concurrency=settings.delivery_workers))
        self._delivery.start()

    def ready(self) -> bool:
        return all(_listening(listener) for listener in self.listeners.values())

    def delivery_alive(self) -> bool:
        if self._delivery_pool is not None:
            return self._delivery_pool.alive()
        return self._delivery is None or self._delivery.alive()

    def pipeline_alive(self) -> bool:
        if self._pool is not None:
            return self._pool.alive()
        return all(worker.is_alive() for worker in self._workers)

    async def stop(self, grace: float = 10.0) -> None:
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
        if self._pool is not None:
            await asyncio.to_thread(self._pool.stop, grace)
        if self._journal is not None:
            await asyncio.to_thread(self._journal.close)

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


def _listening(listener: MllpListener) -> bool:
    try:
        return listener.port > 0
    except SwitchboardError:
        return False


def _is_source(connection: Connection, transport: str) -> bool:
    return connection.transport == transport and connection.direction in (
        "inbound", "bidirectional")


def _folder_config(connection: Connection) -> DropFolderConfig:
    endpoint = connection.endpoint
    assert isinstance(endpoint, FileEndpoint)
    return DropFolderConfig.from_mapping({"directory": endpoint.directory,
                                          "pattern": endpoint.pattern})


def start_web(settings: Settings, port: int, readiness: dict[str, Callable[[], bool]],
              health_only: bool = False) -> BaseWSGIServer:
    """Serve the web app (or only its health routes) on a background thread."""
    from admin import create_app, create_health_app

    factory = create_health_app if health_only else create_app
    app = factory({"DATABASE_URL": settings.database_url,
                   "CONFIG_ROOT": str(settings.config_root),
                   "SWITCHBOARD_READINESS_CHECKS": readiness})
    server = make_server(settings.host, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name=f"web-{port}", daemon=True).start()
    log.info("web listening", extra={"port": server.server_port, "health_only": health_only})
    return server


async def run(settings: Settings, *, engine_part: bool, web_part: bool,
              started: Callable[[EngineProcess | None, list[BaseWSGIServer]], None] | None = None,
              stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set or a termination signal arrives."""
    store = prepare_store(settings)
    stop = stop or asyncio.Event()
    _on_signals(stop)
    process = EngineProcess(store, settings) if engine_part else None
    servers: list[BaseWSGIServer] = []
    try:
        readiness: dict[str, Callable[[], bool]] = {}
        if process is not None:
            await process.start()
            readiness["listeners"] = process.ready
            readiness["pipeline"] = process.pipeline_alive
            readiness["delivery"] = process.delivery_alive
        if web_part:
            servers.append(start_web(settings, settings.web_port, readiness))
        else:
            servers.append(start_web(settings, settings.engine_health_port, readiness, True))
        if started:
            started(process, servers)
        await stop.wait()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
            extensions = server.app.extensions  # type: ignore[attr-defined]
            if "switchboard.previews" in extensions:
                # A preview cut short goes back to the queue for the next start.
                extensions["switchboard.previews"].stop()
            extensions["switchboard"].close()
        if process is not None:
            await process.stop()
        store.dispose()


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(number, stop.set)
