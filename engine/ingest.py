"""Ingest: journal a received message, then build the acknowledgement it is owed.

The ACK is built only from what the journal committed: AA/CA for a new message or a
duplicate (the sender may resend safely), AA/CA with a warning ERR for a conflict (it
is safe in the exception queue and resending will not help), AR/CR with the reason
for input that cannot be read. When the store cannot commit, the sender gets AE/CE
saying so, never a positive ACK. Enhanced mode follows MSH-15: no accept ACK at all
when it says NE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from engine import metrics
from engine.errors import FrameTooLargeError, SwitchboardError
from engine.hl7v2 import Message
from engine.hl7v2.ack import AckError, accept_ack_bytes, ack_modes, original_ack_bytes, reject
from engine.journal import Journal, Journaled, Kind, Received, WriterStopped, now_utc

if TYPE_CHECKING:
    from engine.throughput_rollup import ThroughputRecorder


class StoreUnavailable(SwitchboardError):
    """The journal cannot commit: nothing may be acknowledged positively."""


@dataclass(frozen=True)
class IngestResult:
    journaled: Journaled | None
    ack: bytes | None
    close: bool = False


class Ingestor:
    def __init__(self, journal: Journal, rollup: ThroughputRecorder | None = None) -> None:
        """``rollup`` counts what is received and rejected, per connection and minute,
        for the throughput charts."""
        self._journal = journal
        self._rollup = rollup

    @property
    def journal(self) -> Journal:
        return self._journal

    def ingest(self, received: Received) -> IngestResult:
        metrics.RECEIVED.labels(received.source).inc()
        try:
            journaled = self._journal.record(received)
        except (SQLAlchemyError, WriterStopped) as exc:
            return self._unavailable_result(received, exc)
        return self._result(received, journaled)

    async def ingest_async(self, received: Received) -> IngestResult:
        """``ingest`` for the event loop: waits for the journal's commit without
        holding a thread, then builds the ACK."""
        metrics.RECEIVED.labels(received.source).inc()
        try:
            journaled = await self._journal.submit_async(received)
        except (SQLAlchemyError, WriterStopped) as exc:
            return self._unavailable_result(received, exc)
        return self._result(received, journaled)

    def oversize(self, source: str, peer: str | None, error: FrameTooLargeError) -> IngestResult:
        """Journal an oversize frame (no content), answer AR when its MSH can be read,
        and ask the listener to close the connection."""
        metrics.RECEIVED.labels(source).inc()
        metrics.REJECTED.labels(source).inc()
        self._roll(source, now_utc(), rejected=True)
        try:
            journaled = self._journal.record_oversize(source, peer, error.size)
        except SQLAlchemyError as exc:
            return IngestResult(None, _unavailable(error.head, exc), close=True)
        metrics.EXCEPTIONS.labels(source).inc()
        ack = reject(error.head, error, "AR")
        return IngestResult(journaled, ack.encode() if ack else None, close=True)

    def _result(self, received: Received, journaled: Journaled) -> IngestResult:
        self._roll(received.source, received.received_at,
                   rejected=journaled.kind == Kind.REJECTED)
        return _result(received, journaled)

    def _unavailable_result(self, received: Received, exc: Exception) -> IngestResult:
        self._roll(received.source, received.received_at, rejected=True)
        return _unavailable_result(received, exc)

    def _roll(self, source: str, at: datetime, *, rejected: bool) -> None:
        """Counted as /metrics counts it: every message that arrived is received, and
        one refused (AR, or AE when the store cannot take it) is rejected too."""
        if self._rollup is not None:
            self._rollup.count(source, "received", at=at)
            if rejected:
                self._rollup.count(source, "rejected", at=at)


def _result(received: Received, journaled: Journaled) -> IngestResult:
    result = IngestResult(journaled, _ack_for(journaled, received.raw))
    _count(received.source, journaled)
    elapsed = (now_utc() - received.received_at).total_seconds()
    metrics.INGEST_TO_ACK.labels(received.source).observe(max(elapsed, 0.0))
    return result


def _unavailable_result(received: Received, exc: Exception) -> IngestResult:
    metrics.REJECTED.labels(received.source).inc()
    return IngestResult(None, _unavailable(received.raw, exc))


def _count(source: str, journaled: Journaled) -> None:
    if journaled.kind == Kind.REJECTED:
        metrics.REJECTED.labels(source).inc()
        metrics.EXCEPTIONS.labels(source).inc()
        return
    metrics.ACKNOWLEDGED.labels(source).inc()
    if journaled.kind == Kind.DUPLICATE:
        metrics.DUPLICATES.labels(source).inc()
    elif journaled.kind in (Kind.CONFLICT, Kind.STALE):  # a stale version conflicts too
        metrics.CONFLICTS.labels(source).inc()
        metrics.EXCEPTIONS.labels(source).inc()


def _ack_for(journaled: Journaled, raw: bytes) -> bytes | None:
    if journaled.kind == Kind.REJECTED:
        assert journaled.error is not None
        ack = reject(raw, journaled.error, "AR")
        return ack.encode() if ack else None
    message = journaled.message
    if message is None:  # FHIR over HTTP: the HTTP status is the answer
        return None
    warning = None
    if journaled.kind == Kind.CONFLICT:
        warning = AckError(
            205, "MSH-10 was already used for different content; held for review", "MSH",
            1, 10, severity="W",
        )
    return _positive(message, warning)


def _positive(message: Message, warning: AckError | None) -> bytes | None:
    if ack_modes(message).enhanced:
        return accept_ack_bytes(message, "CA", warning)
    return original_ack_bytes(message, "AA", warning)


def _unavailable(raw: bytes, exc: Exception) -> bytes | None:
    error = StoreUnavailable(
        "Switchboard cannot store the message right now",
        hint="Send it again; nothing was kept",
    )
    ack = reject(raw, error, "AE")
    return ack.encode() if ack else None
