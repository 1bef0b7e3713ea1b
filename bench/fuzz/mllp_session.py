"""One session plan played over MLLP: its frames written as the plan says (one at a
time, several in one write, in pieces, in slow pieces), each answer awaited for at most
:data:`ANSWER_LIMIT` seconds, and the connection ended as the plan says.

The limit is the hang detector: a frame owed an ACK that gets neither it nor the
connection's close within the limit is a hang, kept as a finding with its bytes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import dataclass

from bench.fuzz.inputs import Input, InputMaker, ack_certain
from bench.fuzz.plans import (
    CLOSE,
    DROP_FIN,
    DROP_RST,
    OVERSIZE,
    PIPELINED,
    RESTART,
    SLOW,
    SPLIT,
    STALL,
    VALID,
    InputPlan,
    SessionPlan,
)
from bench.fuzz.tally import Tally
from bench.mllp_load import read_ack

ANSWER_LIMIT = 5.0
LATE_LIMIT = 60.0  # after a hang: how long to wait to tell a late answer from none
VT, FS_CR = b"\x0b", b"\x1c\r"
NOISE = b"\r\n  \x00garbage between frames\x7f\r\n"
MAX_PIECES = 20  # a slow frame is written in at most this many pieces
MAX_SPLIT_PIECES = 200


class Closed(Exception):
    """The listener closed the connection (EOF or reset) before an answer came."""


class Hang(Exception):
    """Nothing came within the limit: no answer and no close."""


@dataclass(frozen=True)
class Listener:
    port: int
    idle_timeout: float
    max_frame_bytes: int


class MllpSession:
    def __init__(self, plan: SessionPlan, maker: InputMaker, listener: Listener,
                 tally: Tally) -> None:
        self.plan = plan
        self.maker = maker
        self.listener = listener
        self.tally = tally
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def run(self) -> None:
        self.tally.session(self.plan)
        await self._connect()
        try:
            await self._frames()
            await self._end()
        finally:
            self.writer.transport.abort()

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.listener.port, limit=1 << 20)
        self.writer.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tally.connections += 1

    async def _reconnect(self) -> None:
        self.writer.transport.abort()
        await self._connect()

    async def _frames(self) -> None:
        """Every planned frame with its answer. An enhanced-mode frame ends its
        connection, and so may the listener; the rest go on a new one."""
        inputs = [self.maker.make(plan) for plan in self.plan.inputs]
        group = self.plan.batch if self.plan.writing == PIPELINED else 1
        at = 0
        while at < len(inputs):
            batch = inputs[at:at + group]
            for index, item in enumerate(batch):
                if not ack_certain(item.payload):
                    batch = batch[:index + 1]
                    break
            at += len(batch)
            if not ack_certain(batch[-1].payload):
                if batch[:-1] and not await self._send_and_answer(batch[:-1]):
                    await self._reconnect()
                await self._last_in_enhanced_mode(batch[-1])
                await self._reconnect()
            elif not await self._send_and_answer(batch):
                await self._reconnect()

    async def _send_and_answer(self, batch: list[Input]) -> bool:
        data = b"".join((NOISE if self.plan.noise else b"") + VT + item.payload + FS_CR
                        for item in batch)
        with contextlib.suppress(OSError):  # closed while writing: the answers tell
            await self._write(data)
        sent = time.monotonic()
        for number, item in enumerate(batch):
            try:
                code = await self._answer(sent)
            except Closed:
                # A close the plan did not ask for (a frame grown past the limit by its
                # edits): it must be one the listener counts for its own reason.
                for rest in batch[number:]:
                    self.tally.count(rest.plan, "closed by Switchboard before an answer",
                                     "mllp")
                self.tally.closed_by_listener += 1
                return False
            except Hang:
                late = await self._late(sent)
                self.tally.count(item.plan, "no answer (hang)" if late is None
                                 else "answered late (hang)", "mllp")
                self.tally.fail("hang", f"no ACK and no close within {ANSWER_LIMIT:g} s"
                                + ("" if late is None else f"; answered after {late:.1f} s"),
                                "mllp", item.payload, item.plan)
                for rest in batch[number + 1:]:
                    self.tally.count(rest.plan, "not awaited: behind a hang", "mllp")
                return False
            self.tally.count(item.plan, code, "mllp")
            if code == "unreadable ACK":
                self.tally.fail("bad_answer", "an ACK without MSA", "mllp", item.payload,
                                item.plan)
        return True

    async def _late(self, sent: float) -> float | None:
        """After a hang: when the answer came after all (seconds after ``sent``), or
        None when nothing came within LATE_LIMIT: a stalled server or a lost frame."""
        try:
            await self._answer(sent, LATE_LIMIT)
        except (Hang, Closed):
            return None
        return time.monotonic() - sent

    async def _answer(self, sent: float, limit: float = ANSWER_LIMIT) -> str:
        """The next ACK's MSA-1, awaited until ``limit`` seconds after ``sent``."""
        try:
            async with asyncio.timeout(max(0.0, sent + limit - time.monotonic())):
                frame = await self.reader.readuntil(FS_CR)
        except TimeoutError:
            raise Hang from None
        except (asyncio.IncompleteReadError, ConnectionError):
            raise Closed from None
        except asyncio.LimitOverrunError:
            return "unreadable ACK"
        self.tally.answered(time.monotonic() - sent)
        read = read_ack(frame)
        return "unreadable ACK" if read is None else read[0].decode("ascii", "replace")

    async def _last_in_enhanced_mode(self, item: Input) -> None:
        """A frame that may be owed no ACK, or an application ACK later: sent last, then
        the sender's half of the connection closed; whatever comes before the listener
        closes its half (within the limit) is its answer."""
        self.tally.expected_closes["peer_closed"] += 1
        data = (NOISE if self.plan.noise else b"") + VT + item.payload + FS_CR
        with contextlib.suppress(OSError):
            await self._write(data)
            self.writer.write_eof()
        sent = time.monotonic()
        codes = []
        while True:
            try:
                codes.append(await self._answer(sent))
            except Closed:
                break
            except Hang:
                self.tally.count(item.plan, "no answer and no close (hang)", "mllp")
                self.tally.fail("hang", "enhanced mode: the connection was not closed "
                                f"within {ANSWER_LIMIT:g} s of the sender's close", "mllp",
                                item.payload, item.plan)
                return
        self.tally.count(item.plan, f"enhanced mode: {'+'.join(codes) or 'no ACK'}", "mllp")

    async def _end(self) -> None:
        ending = self.plan.ending
        if ending == CLOSE:
            self.tally.expected_closes["peer_closed"] += 1
            await self._close()
            return
        item = self.maker.make(InputPlan(VALID, self.plan.cut, (), True))
        if ending == OVERSIZE:
            await self._oversize(item)
            return
        cut = VT + item.payload[:self.plan.cut % max(1, len(item.payload))]
        try:
            await self._write(cut)
        except OSError:
            self.tally.count(None, "cut off: closed while writing", "mllp")
            return
        if ending == DROP_FIN:
            self.tally.expected_closes["peer_closed"] += 1
            self.tally.count(None, "dropped mid-frame (FIN)", "mllp")
            await self._close()
        elif ending == DROP_RST:
            self.tally.expected_closes["lost"] += 1
            self.tally.count(None, "dropped mid-frame (RST)", "mllp")
            self.writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        elif ending == STALL:
            await self._stall(item)
        elif ending == RESTART:
            # The cut frame abandoned for a new start block: dropped, never answered;
            # the whole frame after it is answered as any other.
            self.tally.expected_closes["peer_closed"] += 1
            if await self._send_and_answer([item]):
                await self._close()

    async def _stall(self, item: Input) -> None:
        """A frame cut off, then silence: the listener must close it after its idle
        timeout (within the limit after that)."""
        self.tally.expected_closes["idle"] += 1
        sent = time.monotonic() + self.listener.idle_timeout
        try:
            async with asyncio.timeout(self.listener.idle_timeout + ANSWER_LIMIT):
                extra = await self.reader.read()
        except TimeoutError:
            self.tally.count(None, "stalled mid-frame: never closed (hang)", "mllp")
            self.tally.fail("hang", "a connection silent mid-frame was not closed within "
                            f"the idle timeout + {ANSWER_LIMIT:g} s", "mllp", item.payload,
                            "stall")
            return
        except ConnectionError:
            extra = b""
        self.tally.answered(max(0.0, time.monotonic() - sent))
        self.tally.closed_by_listener += 1
        self.tally.count(None, "stalled mid-frame: closed by Switchboard"
                         + (" (with data)" if extra else ""), "mllp")

    async def _oversize(self, item: Input) -> None:
        """A frame over the listener's limit: answered AR, then the connection closed."""
        self.tally.expected_closes["oversize"] += 1
        filler = b"OBX|1|TX|||" + b"x" * (self.listener.max_frame_bytes + self.plan.cut) + b"\r"
        # Written whole, whatever the plan's writing: the listener answers once it
        # has seen the limit passed, while the rest is still arriving.
        self.writer.write(VT + item.payload + filler + FS_CR)
        sent = time.monotonic()
        try:
            code = await self._answer(sent)
        except Closed:
            self.tally.count(None, "oversize: closed without an answer", "mllp")
            self.tally.fail("oversize_unanswered", "an oversize frame got no AR", "mllp",
                            item.payload, "oversize")
            return
        except Hang:
            self.tally.count(None, "oversize: no answer (hang)", "mllp")
            self.tally.fail("hang", f"an oversize frame got no AR within {ANSWER_LIMIT:g} s",
                            "mllp", item.payload, "oversize")
            return
        try:
            async with asyncio.timeout(ANSWER_LIMIT):
                while await self.reader.read(1 << 16):
                    pass
            outcome = f"oversize: {code}, then closed"
            self.tally.closed_by_listener += 1
        except ConnectionError:
            outcome = f"oversize: {code}, then closed"
            self.tally.closed_by_listener += 1
        except TimeoutError:
            outcome = f"oversize: {code}, then not closed (hang)"
            self.tally.fail("hang", "an oversize frame's connection was not closed within "
                            f"{ANSWER_LIMIT:g} s of its AR", "mllp", item.payload, "oversize")
        self.tally.count(None, outcome, "mllp")

    async def _write(self, data: bytes) -> None:
        writing = self.plan.writing
        if writing not in (SPLIT, SLOW) or len(data) <= 1:
            self.writer.write(data)
            await self.writer.drain()
            return
        # Pieces enough to land in several reads; not so many that writing costs more
        # than what it tests.
        piece = max(self.plan.piece, -(-len(data) // (MAX_PIECES if writing == SLOW
                                                       else MAX_SPLIT_PIECES)))
        for start in range(0, len(data), piece):
            self.writer.write(data[start:start + piece])
            await self.writer.drain()
            if writing == SLOW:
                await asyncio.sleep(self.plan.pause_ms / 1000)

    async def _close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
