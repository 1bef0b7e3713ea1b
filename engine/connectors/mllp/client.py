"""An MLLP client: send HL7 v2 messages to a listener and read back their ACKs.

One connection, one message at a time: :meth:`MllpClient.send` frames the payload,
writes it and returns the next ACK payload. ACKs are matched to messages by order,
so after a timeout the connection is closed (a late ACK would otherwise be taken for
the next message's) and the next send connects again. :class:`BlockingMllpClient`
wraps it for synchronous callers such as ``switchboard send``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from types import TracebackType

from engine.errors import FrameTooLargeError, SwitchboardError
from engine.hl7v2.mllp import DEFAULT_MAX_FRAME_BYTES, Decoded, FrameDecoder, encode_frame

__all__ = ["AckTimeout", "BlockingMllpClient", "MllpClient", "MllpConnectionError"]

READ_SIZE = 64 * 1024


class MllpConnectionError(SwitchboardError):
    """The listener cannot be reached, or the connection broke: reconnect later."""


class AckTimeout(SwitchboardError):
    """No ACK arrived in time. The message may or may not have been kept; sending it
    again is safe (the receiver recognises the duplicate)."""


class MllpClient:
    """Sends messages over one MLLP connection, opened on first use; ``timeout`` bounds
    the connect, each write and each wait for an ACK, in seconds."""

    def __init__(
        self, host: str, port: int, timeout: float, *,
        max_ack_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._max_ack_bytes = max_ack_bytes
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = FrameDecoder(max_ack_bytes)
        self._pending: deque[Decoded] = deque()

    async def __aenter__(self) -> MllpClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(self, payload: bytes) -> bytes:
        """Send one message and return its ACK payload (MLLP framing removed).

        When a connection kept from an earlier message turns out to be closed (the
        listener closes after an oversize frame, or when idle), the message is sent
        once more on a new connection: a copy that did arrive is recognised as a
        duplicate, so this never doubles it."""
        reused = self._writer is not None
        try:
            await self.write(payload)
            return await self.read_ack()
        except MllpConnectionError:
            if not reused:
                raise
        await self.write(payload)
        return await self.read_ack()

    async def write(self, payload: bytes) -> None:
        """Send one message without waiting for an ACK (for MSH-15 ``NE``). Raises
        FramingError, before connecting, when the payload holds a VT or FS byte."""
        frame = encode_frame(payload)
        writer = await self._connected()
        writer.write(frame)
        try:
            async with asyncio.timeout(self.timeout):
                await writer.drain()
        except TimeoutError:
            await self.close()
            raise AckTimeout(
                f"{self._where}: the listener did not take the message within "
                f"{self.timeout:g} s", hint="Check that the listener is not overloaded",
            ) from None
        except OSError as exc:
            await self.close()
            raise self._lost(exc) from None

    async def read_ack(self) -> bytes:
        """The next ACK payload; raises AckTimeout or MllpConnectionError."""
        try:
            async with asyncio.timeout(self.timeout):
                while not self._pending:
                    await self._read_more()
        except TimeoutError:
            await self.close()
            raise AckTimeout(
                f"{self._where}: no ACK within {self.timeout:g} s",
                hint="Send the message again; the receiver recognises a duplicate",
            ) from None
        except OSError as exc:
            await self.close()
            raise self._lost(exc) from None
        item = self._pending.popleft()
        if isinstance(item, FrameTooLargeError):
            raise item
        return item

    async def close(self) -> None:
        """Close the connection (if open); the next send opens a new one."""
        writer, self._reader, self._writer = self._writer, None, None
        self._decoder = FrameDecoder(self._max_ack_bytes)
        self._pending.clear()
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    @property
    def _where(self) -> str:
        return f"MLLP {self.host}:{self.port}"

    async def _connected(self) -> asyncio.StreamWriter:
        if self._writer is not None:
            return self._writer
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, limit=READ_SIZE)
        except TimeoutError:
            raise MllpConnectionError(
                f"cannot connect to {self._where}: no answer within {self.timeout:g} s",
                hint="Check the host, the port and any firewall between them",
            ) from None
        except OSError as exc:
            raise MllpConnectionError(
                f"cannot connect to {self._where}: {_reason(exc)}",
                hint="Check that the listener is running and the address is right",
            ) from None
        return self._writer

    async def _read_more(self) -> None:
        if self._reader is None:
            raise MllpConnectionError(f"{self._where}: not connected")
        data = await self._reader.read(READ_SIZE)
        if not data:
            await self.close()
            raise MllpConnectionError(
                f"{self._where}: the listener closed the connection without an ACK",
                hint="Look at the listener's log: it may refuse this peer or the message size",
            )
        self._pending.extend(self._decoder.feed(data))

    def _lost(self, exc: OSError) -> MllpConnectionError:
        return MllpConnectionError(
            f"{self._where}: connection lost: {_reason(exc)}",
            hint="Send the message again; the receiver recognises a duplicate",
        )


def _reason(exc: OSError) -> str:
    """"Connection refused" rather than asyncio's "Connect call failed (addr)"."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


class BlockingMllpClient:
    """:class:`MllpClient` for synchronous code: every call runs on one private event
    loop, so the connection survives from one message to the next."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._runner = asyncio.Runner()
        self._client = MllpClient(host, port, timeout)
        self._closed = False

    def __enter__(self) -> BlockingMllpClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, payload: bytes) -> bytes:
        return self._runner.run(self._client.send(payload))

    def write(self, payload: bytes) -> None:
        self._runner.run(self._client.write(payload))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.run(self._client.close())
        finally:
            self._runner.close()
