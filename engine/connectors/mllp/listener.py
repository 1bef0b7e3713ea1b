"""The MLLP listener: HL7 v2 over TCP in, journal, then ACK out.

One asyncio task serves each connection with its own :class:`FrameDecoder`. Frames
on a connection are handled one at a time, so their ACKs leave in order and a fast
sender is slowed by TCP itself rather than by buffers growing here. The journal
commit runs on a bounded thread pool: the event loop keeps serving every other
connection while one waits for the database. An ACK is written only from the result
of that commit (see :mod:`engine.ingest`).

Nothing a sender does can cost more than one connection: a peer outside
``allowed_peers`` is closed before anything is read; an oversize frame is journaled
without content, answered AR and its connection closed; a silent or half-open
connection is closed after ``idle_timeout``. Logs carry peers, sizes and journal ids,
never message content (it is PHI).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from engine import metrics
from engine.connectors import ConnectorError
from engine.connectors.mllp.application_ack import ApplicationAcks
from engine.errors import FrameTooLargeError
from engine.hl7v2.mllp import Decoded, FrameDecoder, encode_frame
from engine.ingest import Ingestor, IngestResult
from engine.journal import Kind, Received
from engine.model.schemas import format_location

__all__ = ["SCHEMA", "ListenerCounters", "MllpListener", "MllpListenerConfig"]

logger = logging.getLogger(__name__)

SCHEMA: dict[str, Any] = json.loads(Path(__file__).with_name("schema.json").read_text())
_VALIDATOR = Draft202012Validator(SCHEMA)

READ_SIZE = 64 * 1024
LISTEN_BACKLOG = 1024
DEFAULT_INGEST_WORKERS = 8
# After an oversize frame: how long to keep reading (and dropping) what the sender
# still has in flight, so that our AR is not destroyed by a TCP reset.
LINGER_SECONDS = 2.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Why a connection ended, as logged.
PEER_CLOSED = "closed by the peer"
IDLE = "idle timeout"
OVERSIZE = "oversize frame"
STOPPED = "listener stopped"
LOST = "connection lost"
SLOW_READER = "peer does not read its ACKs"
INTERNAL_ERROR = "internal error"
# Each reason as counted on /metrics (switchboard_mllp_closed_total): a short, fixed
# label, so that the error's type in an internal error's reason makes no new series.
REASON_LABELS = {PEER_CLOSED: "peer_closed", IDLE: "idle", OVERSIZE: "oversize",
                 STOPPED: "stopped", LOST: "lost", SLOW_READER: "slow_reader"}
REFUSED = "refused"


@dataclass(frozen=True)
class MllpListenerConfig:
    """The listener's config as declared in ``schema.json``; build it with
    :meth:`from_mapping` so that defaults come from the schema, not from code."""

    host: str
    port: int
    max_frame_bytes: int
    allowed_peers: tuple[Network, ...]
    idle_timeout: float
    max_connections: int

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> MllpListenerConfig:
        """Validate ``config`` against the schema, fill in its defaults."""
        problems = sorted(
            f"{format_location(error.absolute_path)}: {error.message}"
            for error in _VALIDATOR.iter_errors(dict(config))
        )
        if problems:
            raise ConnectorError(
                f"MLLP listener config is invalid: {'; '.join(problems)}",
                hint="Correct the connection's config; see engine/connectors/mllp/schema.json",
            )
        values = {name: spec["default"] for name, spec in SCHEMA["properties"].items()}
        values.update(config)
        return cls(
            host=str(values["host"]),
            port=int(values["port"]),
            max_frame_bytes=int(values["max_frame_bytes"]),
            allowed_peers=_networks(values["allowed_peers"]),
            idle_timeout=float(values["idle_timeout"]),
            max_connections=int(values["max_connections"]),
        )

    def allows(self, peer: str) -> bool:
        """True when ``peer`` (an IP address) may connect."""
        if not self.allowed_peers:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.allowed_peers)


def _networks(entries: list[str]) -> tuple[Network, ...]:
    networks = []
    for index, entry in enumerate(entries):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConnectorError(
                f"MLLP listener config is invalid: allowed_peers[{index}]: {entry!r} is "
                "not an IP address or CIDR network",
                hint="Write addresses as 10.20.0.5 or networks as 10.20.0.0/16",
            ) from None
    return tuple(networks)


@dataclass
class ListenerCounters:
    """Totals since the listener was created, for the metrics endpoint. Only the event
    loop writes them, so they need no lock.

    ``received``: frames handed to the journal; ``acked``: ACK frames written;
    ``rejected``: frames the journal could not take as a message (unreadable: AR, or
    store down: AE); ``oversize``: frames over the limit; ``partial_frames``:
    connections that ended in the middle of a frame; ``discarded_bytes``: bytes
    outside frames and in abandoned frames."""

    received: int = 0
    acked: int = 0
    rejected: int = 0
    oversize: int = 0
    connections_open: int = 0
    connections_total: int = 0
    peers_refused: int = 0
    connections_refused: int = 0
    idle_closed: int = 0
    partial_frames: int = 0
    discarded_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str
    number: int
    decoder: FrameDecoder
    waiting_for_data: bool = False
    frames: int = 0

    @property
    def idle(self) -> bool:
        """Waiting for a new frame: closing it now loses nothing."""
        return self.waiting_for_data and self.decoder.at_frame_boundary


class MllpListener:
    """An MLLP source (see :mod:`engine.connectors` for the ``Source`` contract).

    ``ingest_workers`` bounds the threads that commit to the journal; since each
    connection waits for its frame's commit before reading on, at most one commit per
    connection is ever queued.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        source_id: str,
        config: MllpListenerConfig,
        *,
        ingest_workers: int = DEFAULT_INGEST_WORKERS,
        application_acks: ApplicationAcks | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._application_acks = application_acks
        self._source_id = source_id
        self._config = config
        self._workers = ingest_workers
        self.counters = ListenerCounters()
        self._server: asyncio.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._live: dict[asyncio.Task[Any], _Connection] = {}
        self._stopping = False

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when the config says 0)."""
        if self._server is None or not self._server.sockets:
            raise ConnectorError(f"MLLP listener {self._source_id} is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def live_connections(self) -> int:
        """Connections with a task still running; 0 after every peer has gone."""
        return len(self._live)

    def _log(self, **fields: object) -> dict[str, object]:
        return {"source_id": self._source_id, **fields}

    async def start(self) -> None:
        """Bind and start accepting; raises ConnectorError when the port cannot be bound."""
        if self._server is not None:
            raise ConnectorError(f"MLLP listener {self._source_id} is already started")
        self._stopping = False
        self._executor = ThreadPoolExecutor(
            self._workers, thread_name_prefix=f"mllp-{self._source_id}"
        )
        try:
            self._server = await asyncio.start_server(
                self._on_connect, self._config.host, self._config.port,
                limit=READ_SIZE, backlog=LISTEN_BACKLOG,
            )
        except OSError as exc:
            self._executor.shutdown(wait=False)
            raise ConnectorError(
                f"MLLP listener {self._source_id} cannot listen on "
                f"{self._config.host}:{self._config.port}: {exc.strerror or exc}",
                hint="Choose a free port, or stop the process that holds it",
            ) from None
        logger.info("MLLP listener started", extra=self._log(
            host=self._config.host, port=self.port))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting; let frames in flight be journaled and ACKed for up to
        ``grace`` seconds; then close every connection and wait for the journal."""
        server = self._server
        if server is None:
            return
        self._stopping = True
        server.close()
        await self._finish_connections(grace)
        await server.wait_closed()
        self._server = None
        if self._executor is not None:
            # Commits already running finish before stop returns: nothing is left
            # writing to a database the caller may be about to close.
            await asyncio.to_thread(self._executor.shutdown)
            self._executor = None
        logger.info("MLLP listener stopped", extra=self._log(**self.counters.as_dict()))

    async def serve_forever(self, grace: float = 10.0) -> None:
        """Serve until cancelled (Ctrl-C under ``asyncio.run``), then stop gracefully."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await self.stop(grace)

    async def _finish_connections(self, grace: float) -> None:
        await asyncio.sleep(0)  # connections accepted just before close() register first
        for task, connection in list(self._live.items()):
            if connection.idle:
                task.cancel()
        tasks = list(self._live)
        if not tasks:
            return
        _done, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def _on_connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = _peer_ip(writer)
        task = asyncio.current_task()
        if task is None or not self._admit(peer):
            writer.close()
            metrics.MLLP_CLOSED.labels(self._source_id, REFUSED).inc()
            return
        self.counters.connections_total += 1
        self.counters.connections_open += 1
        connection = _Connection(reader, writer, peer, self.counters.connections_total,
                                 FrameDecoder(self._config.max_frame_bytes))
        self._live[task] = connection
        logger.info("MLLP connection opened", extra=self._log(
            peer=peer, connection=connection.number))
        reason = LOST
        try:
            reason = await self._converse(connection)
        except asyncio.CancelledError:
            reason = STOPPED
            raise
        except ConnectionError:
            reason = LOST
        except TimeoutError:
            reason = SLOW_READER
        except Exception as exc:  # a bug must cost one connection, not the listener
            reason = f"{INTERNAL_ERROR} ({type(exc).__name__})"
            logger.error("MLLP connection failed", extra=self._log(
                peer=peer, connection=connection.number, error=type(exc).__name__))
        finally:
            self._close(task, connection, reason)

    def _admit(self, peer: str) -> bool:
        if self._stopping:
            return False
        if not self._config.allows(peer):
            self.counters.peers_refused += 1
            logger.warning("MLLP peer refused: not in allowed_peers", extra=self._log(peer=peer))
            return False
        if len(self._live) >= self._config.max_connections:
            self.counters.connections_refused += 1
            logger.warning("MLLP connection refused: max_connections reached", extra=self._log(
                peer=peer, max_connections=self._config.max_connections))
            return False
        return True

    async def _converse(self, connection: _Connection) -> str:
        """Read, journal and answer frames until the connection should end; say why."""
        while not (self._stopping and connection.decoder.at_frame_boundary):
            data = await self._read(connection)
            if data is None:
                self.counters.idle_closed += 1
                return IDLE
            if not data:
                return PEER_CLOSED
            for item in connection.decoder.feed(data):
                if not await self._answer(connection, item):
                    await self._linger(connection)
                    return OVERSIZE
        return STOPPED

    async def _read(self, connection: _Connection) -> bytes | None:
        """The next bytes, b"" at end of stream, None after ``idle_timeout`` of silence."""
        connection.waiting_for_data = True
        try:
            async with asyncio.timeout(self._config.idle_timeout):
                return await connection.reader.read(READ_SIZE)
        except TimeoutError:
            return None
        finally:
            connection.waiting_for_data = False

    async def _answer(self, connection: _Connection, item: Decoded) -> bool:
        """Journal one frame and write its ACK; False when the connection must close."""
        connection.frames += 1
        result = await self._journal(connection, item)
        if result.ack is not None:
            connection.writer.write(encode_frame(result.ack))
            async with asyncio.timeout(self._config.idle_timeout):
                await connection.writer.drain()
            self.counters.acked += 1
        journaled = result.journaled
        if (self._application_acks is not None and journaled is not None
                and journaled.kind == Kind.NEW and journaled.message is not None):
            self._application_acks.expect(journaled.message_id, journaled.message,
                                          connection.writer)
        return not result.close

    async def _journal(self, connection: _Connection, item: Decoded) -> IngestResult:
        loop = asyncio.get_running_loop()
        if isinstance(item, FrameTooLargeError):
            self.counters.oversize += 1
            logger.warning("MLLP frame over the limit", extra=self._log(
                peer=connection.peer, connection=connection.number,
                size_bytes=item.size, limit=item.limit))
            return await loop.run_in_executor(
                self._executor, self._ingestor.oversize, self._source_id, connection.peer, item)
        self.counters.received += 1
        received = Received(item, self._source_id, connection.peer)
        # The journal's writer thread does the commit: awaiting its future costs no thread.
        result = await self._ingestor.ingest_async(received)
        journaled = result.journaled
        if journaled is None or journaled.kind == Kind.REJECTED:
            self.counters.rejected += 1
        logger.debug("MLLP frame journaled", extra=self._log(
            peer=connection.peer, connection=connection.number, size_bytes=len(item),
            kind=journaled.kind if journaled else "not stored",
            message_id=journaled.message_id if journaled else None))
        return result

    async def _linger(self, connection: _Connection) -> None:
        """Half-close after the AR and drop what the sender still has in flight: closing
        with unread input makes the kernel send a reset, which can destroy the AR."""
        with contextlib.suppress(OSError, TimeoutError):
            if connection.writer.can_write_eof():
                connection.writer.write_eof()
            async with asyncio.timeout(min(LINGER_SECONDS, self._config.idle_timeout)):
                while await connection.reader.read(READ_SIZE):
                    pass

    def _close(self, task: asyncio.Task[Any], connection: _Connection, reason: str) -> None:
        self._live.pop(task, None)
        self.counters.connections_open -= 1
        metrics.MLLP_CLOSED.labels(
            self._source_id, REASON_LABELS.get(reason, "internal_error")).inc()
        self.counters.discarded_bytes += connection.decoder.discarded_bytes
        partial = reason != OVERSIZE and not connection.decoder.at_frame_boundary
        if partial:
            self.counters.partial_frames += 1
        transport = connection.writer.transport
        if transport.get_write_buffer_size():
            transport.abort()  # the peer is not reading: do not wait for it
        else:
            connection.writer.close()
        logger.info("MLLP connection closed", extra=self._log(
            peer=connection.peer, connection=connection.number, reason=reason,
            frames=connection.frames, partial_frame=partial))


def _peer_ip(writer: asyncio.StreamWriter) -> str:
    """The peer's IP address; an IPv4 peer on a dual-stack socket as plain IPv4."""
    peername = writer.get_extra_info("peername")
    host = str(peername[0]) if isinstance(peername, tuple) and peername else str(peername)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
