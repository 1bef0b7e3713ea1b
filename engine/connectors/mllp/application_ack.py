"""Enhanced-mode application ACKs: when MSH-16 asks for one, the sender gets a second
acknowledgement on the same connection once the pipeline has decided what became of
its message (AA: routed; AE: processing failed, the message waits in the exception
queue). The accept ACK (CA) has already gone out at journal commit.

The pipeline runs in other processes, so the outcome is read from the journal: one
query every ``interval`` for every message still waiting. A connection that closed
before the outcome was known gets no application ACK; the journal and the exception
queue still hold the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from engine.hl7v2 import Message
from engine.hl7v2.ack import AckError, ack_modes, application_ack
from engine.hl7v2.mllp import encode_frame
from engine.store.database import reader
from engine.store.models import JournalEntry

log = logging.getLogger("switchboard.mllp")
OUTCOMES = {"routed": "AA", "failed": "AE"}
FAILED = AckError(207, "processing failed; the message is held in the exception queue")


@dataclass
class _Waiting:
    message: Message
    writer: asyncio.StreamWriter
    since: float


def wants_application_ack(message: Message) -> bool:
    """Whether some outcome could call for an application ACK (MSH-16 not NE)."""
    modes = ack_modes(message)
    return modes.enhanced and modes.application.upper() != "NE"


class ApplicationAcks:
    def __init__(self, engine: Engine, *, interval: float = 0.2,
                 give_up_after: float = 3600.0) -> None:
        self._engine = reader(engine)
        self._interval = interval
        self._give_up_after = give_up_after
        self._waiting: dict[str, _Waiting] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def expect(self, message_id: str, message: Message, writer: asyncio.StreamWriter) -> None:
        """Send ``message``'s application ACK on ``writer`` once it has an outcome."""
        if wants_application_ack(message):
            self._waiting[message_id] = _Waiting(message, writer, time.monotonic())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="application-acks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if not self._waiting:
                continue
            try:
                await self.send_ready()
            except Exception:  # the store is down: the next round asks again
                log.warning("application ACKs: cannot read outcomes yet", exc_info=True)

    async def send_ready(self) -> None:
        """One round: answer every waiting message whose outcome is known."""
        self._forget_the_gone()
        ids = list(self._waiting)
        if not ids:
            return
        outcomes = await asyncio.to_thread(self._outcomes, ids)
        for message_id, status in outcomes.items():
            waiting = self._waiting.pop(message_id, None)
            code = OUTCOMES.get(status)
            if waiting is None or code is None:
                continue
            ack = application_ack(waiting.message, code, None if code == "AA" else FAILED)
            if ack is not None and not waiting.writer.is_closing():
                waiting.writer.write(encode_frame(ack.encode()))

    def _forget_the_gone(self) -> None:
        now = time.monotonic()
        for message_id, waiting in list(self._waiting.items()):
            if waiting.writer.is_closing() or now - waiting.since > self._give_up_after:
                del self._waiting[message_id]

    def _outcomes(self, message_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(message_ids), 500):
                rows = connection.execute(
                    select(JournalEntry.message_id, JournalEntry.status).where(
                        JournalEntry.message_id.in_(message_ids[start:start + 500]),
                        JournalEntry.status.in_(list(OUTCOMES))))
                found.update({message_id: status for message_id, status in rows})
        return found
