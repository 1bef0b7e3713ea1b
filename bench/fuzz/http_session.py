"""One session plan played over HTTP ingest: each input POSTed on one keep-alive
connection (HL7 v2 to the HL7 feed, FHIR JSON to the FHIR feed), written whole, in
pieces or in slow pieces, and its response awaited for at most ``ANSWER_LIMIT``
seconds (the hang detector, as over MLLP). A 5xx answer breaks the no-crash invariant:
bad input gets a 4xx that says why."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass

from bench.fuzz.inputs import Input, InputMaker
from bench.fuzz.mllp_session import ANSWER_LIMIT, LATE_LIMIT, MAX_PIECES
from bench.fuzz.plans import (
    DROP_FIN,
    NO_TOKEN,
    SLOW,
    SPLIT,
    VALID,
    WRONG_TYPE,
    InputPlan,
    SessionPlan,
)
from bench.fuzz.tally import Tally


@dataclass(frozen=True)
class Feed:
    connection: str
    token: str
    media_type: str


@dataclass(frozen=True)
class Ingest:
    port: int
    hl7: Feed
    fhir: Feed


class HttpSession:
    def __init__(self, plan: SessionPlan, maker: InputMaker, ingest: Ingest,
                 tally: Tally) -> None:
        self.plan = plan
        self.maker = maker
        self.feed = ingest.fhir if plan.fhir else ingest.hl7
        self.port = ingest.port
        self.tally = tally
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def run(self) -> None:
        self.tally.session(self.plan)
        try:
            for plan in self.plan.inputs:
                if not await self._post(self.maker.make(plan)):
                    return
            if self.plan.ending == DROP_FIN:
                await self._drop(self.maker.make(InputPlan(VALID, self.plan.cut, (), True)))
        finally:
            self._disconnect()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.streams is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.streams = reader, writer
        return self.streams

    def _disconnect(self) -> None:
        if self.streams is not None:
            self.streams[1].transport.abort()
            self.streams = None

    def _request(self, item: Input, length: int | None = None) -> bytes:
        headers = [f"POST /ingest/{self.feed.connection} HTTP/1.1",
                   f"Host: 127.0.0.1:{self.port}",
                   f"Content-Length: {len(item.payload) if length is None else length}",
                   "Content-Type: " + ("text/plain" if item.plan.request == WRONG_TYPE
                                       else self.feed.media_type)]
        if item.plan.request != NO_TOKEN:
            headers.append(f"Authorization: Bearer {self.feed.token}")
        return ("\r\n".join(headers) + "\r\n\r\n").encode() + item.payload

    async def _post(self, item: Input) -> bool:
        """POST one input; False when the session cannot go on."""
        reader, writer = await self._connect()
        cut_short = False
        try:
            await self._write(writer, self._request(item))
        except OSError:  # it may answer, and close, before reading the whole request
            cut_short = True
        sent = time.monotonic()
        try:
            async with asyncio.timeout(ANSWER_LIMIT):
                status, close = await _response(reader)
        except TimeoutError:
            late = None
            with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError,
                                     ConnectionError, ValueError):
                async with asyncio.timeout(LATE_LIMIT):
                    await _response(reader)
                    late = time.monotonic() - sent
            self.tally.count(item.plan, "no answer (hang)" if late is None
                             else "answered late (hang)", "http")
            self.tally.fail("hang", f"no HTTP response within {ANSWER_LIMIT:g} s"
                            + ("" if late is None else f"; answered after {late:.1f} s"),
                            "http", item.payload, item.plan)
            return False
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as error:
            early = _early_status(reader) if cut_short else None
            if early is not None:
                self.tally.answered(time.monotonic() - sent)
                self.tally.count(item.plan, f"{early} before the whole request was sent",
                                 "http")
                self._disconnect()
                return True
            self.tally.count(item.plan, "connection closed without a response", "http")
            self.tally.fail("no_response", f"closed without a response ({error!r})",
                            "http", item.payload, item.plan)
            self._disconnect()
            return True
        self.tally.answered(time.monotonic() - sent)
        self.tally.count(item.plan, str(status), "http")
        if status >= 500:
            self.tally.fail("server_error", f"HTTP {status}", "http", item.payload, item.plan)
        if close:
            self._disconnect()
        return True

    async def _drop(self, item: Input) -> None:
        """Headers and part of the body, then the connection closed."""
        _reader, writer = await self._connect()
        request = self._request(item)
        cut = len(request) - len(item.payload) + self.plan.cut % max(1, len(item.payload))
        with contextlib.suppress(OSError):
            await self._write(writer, request[:cut])
        self.tally.count(None, "dropped mid-request", "http")

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writing = self.plan.writing
        if writing not in (SPLIT, SLOW):
            writer.write(data)
            await writer.drain()
            return
        piece = max(self.plan.piece, -(-len(data) // MAX_PIECES))
        for start in range(0, len(data), piece):
            writer.write(data[start:start + piece])
            await writer.drain()
            if writing == SLOW:
                await asyncio.sleep(self.plan.pause_ms / 1000)


def _early_status(reader: asyncio.StreamReader) -> int | None:
    """The status of a response that came before the request was written whole (a
    refusal on the headers alone; the server then closed without reading the rest),
    or None. Once a write has failed, the stream reader raises that error before it
    looks at what it had already received; the response is read from its buffer."""
    received = bytes(getattr(reader, "_buffer", b""))
    if b"\r\n\r\n" not in received or not received.startswith(b"HTTP/"):
        return None
    try:
        return int(received.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server closes the connection after it), body read."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, lines[0].startswith("HTTP/1.0")
    for line in lines[1:]:
        name, _, text = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(text.strip())
        elif name.strip().lower() == "connection":
            close = text.strip().lower() == "close"
    await reader.readexactly(length)
    return status, close
