"""Connector fixtures: the store fixtures (SQLite and PostgreSQL) and a real MLLP
listener on 127.0.0.1, with a small raw peer for speaking MLLP byte by byte."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.connectors.mllp import MllpListener, MllpListenerConfig
from engine.hl7v2 import Message, parse
from engine.hl7v2.mllp import Decoded, FrameDecoder, encode_frame
from engine.ingest import Ingestor
from engine.journal import Journal
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from engine.store.models import JournalEntry
from tests.engine.store.conftest import engine  # noqa: F401

T = TypeVar("T")
SOURCE = "ehr-adt-feed"
ADT = (
    "MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500-0500||ADT^A01^ADT_A01|{control_id}"
    "|P|2.5.1{modes}\r"
    "PID|1||MRN1^^^RIVERSIDE^MR||DOE^JANE\r"
)


def adt(control_id: str, modes: str = "") -> bytes:
    """A small ADT^A01 whose MSH-10 is ``control_id``; ``modes`` appends MSH-13..16."""
    return ADT.format(control_id=control_id, modes=modes).encode()


def run(scenario: Awaitable[T], limit: float = 30.0) -> T:
    """Run an async test scenario; a hang fails the test instead of the whole run."""
    async def bounded() -> T:
        return await asyncio.wait_for(scenario, limit)
    return asyncio.run(bounded())


@pytest.fixture
def ingestor(engine: Engine) -> Ingestor:  # noqa: F811 - the fixture imported above
    upgrade(engine)
    return Ingestor(Journal(engine))


@pytest.fixture
def sqlite_engine(tmp_path: Any) -> Iterator[Engine]:
    """SQLite only: for tests about the network rather than the store."""
    opened = open_engine(f"sqlite:///{tmp_path / 'switchboard.db'}")
    upgrade(opened)
    try:
        yield opened
    finally:
        opened.dispose()


@pytest.fixture
def sqlite_ingestor(sqlite_engine: Engine) -> Ingestor:
    return Ingestor(Journal(sqlite_engine))


def journal_rows(database: Engine) -> list[JournalEntry]:
    with Session(database) as session:
        return list(session.scalars(select(JournalEntry).order_by(JournalEntry.id)))


@asynccontextmanager
async def listening(ingestor: Ingestor, application_acks: Any = None,
                    **config: Any) -> AsyncIterator[MllpListener]:
    """A started listener on 127.0.0.1 and a free port, stopped afterwards."""
    settings = MllpListenerConfig.from_mapping({"host": "127.0.0.1", "port": 0, **config})
    listener = MllpListener(ingestor, SOURCE, settings, application_acks=application_acks)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop(grace=2.0)


class Peer:
    """A raw MLLP sender: writes exactly the bytes given, reads ACK frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._decoder = FrameDecoder()
        self._frames: deque[Decoded] = deque()

    @classmethod
    async def open(cls, port: int) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, payload: bytes) -> None:
        await self.send_raw(encode_frame(payload))

    async def ack(self, timeout: float = 10.0) -> Message:
        async with asyncio.timeout(timeout):
            while not self._frames:
                data = await self.reader.read(65536)
                assert data, "the listener closed the connection instead of answering"
                self._frames.extend(self._decoder.feed(data))
        frame = self._frames.popleft()
        assert isinstance(frame, bytes)
        return parse(frame)

    async def closed_by_listener(self, timeout: float = 5.0) -> bool:
        """True once the listener ends the connection (EOF or reset) within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except ConnectionError:
            return True
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()
