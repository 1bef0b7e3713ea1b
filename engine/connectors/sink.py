"""Sinks: the outbound half of the connectors, found by the catalog's transport name.

The ``Sink`` contract:

- ``factory(connection, store)`` builds a sink for one catalog connection (its typed
  endpoint says where to send) without doing any I/O; ``store`` is the engine's
  database, for sinks that deliver into it (the task queue). A connection whose endpoint
  does not suit the sink raises :class:`~engine.connectors.ConnectorError`.
- ``sink.send(outbound)`` delivers one message and returns only once the destination
  has taken it. It raises :class:`DeliveryFailed` with an error class the exception
  policies know (transport_error, timeout, rejected, conflict) and a reason that names
  no message content. Every delivery carries ``outbound.idempotency_key`` to the
  destination (an HTTP header, MSH-10 for MLLP, the file name for files), the same on
  every retry, so a receiver can drop a repeat.
- A sink is used by one thread at a time; ``close()`` releases what it holds, never
  raises, and may be called more than once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from engine.errors import SwitchboardError
from engine.rules.catalog_entry import Connection
from engine.rules.exception_policy import ErrorClass

__all__ = [
    "IDEMPOTENCY_HEADER",
    "DeliveryFailed",
    "Outbound",
    "Sink",
    "SinkFactory",
    "register_sink",
    "sink_factory",
    "sink_names",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Outbound:
    """One delivery as a sink sees it: the bytes to send, already encoded in the
    destination's catalog format, and the keys that make a repeat recognisable."""

    delivery_id: int
    journal_id: int
    message_id: str
    destination: str
    idempotency_key: str
    media_type: str
    body: str
    patient_key: str | None = None
    received_at: datetime | None = None


class DeliveryFailed(SwitchboardError):
    """A delivery did not reach its destination, or the destination refused it.
    ``reason`` names no message content: it is stored and shown to operators.
    ``detail`` is what the destination said about it (a FHIR OperationOutcome's issues),
    which may quote the message: it is kept on the exception item, never logged."""

    def __init__(self, error_class: ErrorClass, reason: str, *, hint: str | None = None,
                 detail: Mapping[str, Any] | None = None):
        self.error_class = error_class
        self.detail = dict(detail or {})
        super().__init__(reason, hint=hint)


class Sink(Protocol):
    """An outbound connector; see the module docstring for the contract."""

    def send(self, outbound: Outbound) -> None: ...

    def close(self) -> None: ...


SinkFactory = Callable[[Connection, Engine], Sink]

_SINKS: dict[str, SinkFactory] = {}


def register_sink(transport: str, factory: SinkFactory) -> None:
    """Make ``factory`` the sink of catalog transport ``transport``; registering one
    name twice is a programming error, not an override."""
    from engine.connectors import ConnectorError

    if transport in _SINKS:
        raise ConnectorError(f"Sink {transport!r} is registered twice",
                             hint="Give each connector folder its own name")
    _SINKS[transport] = factory


def sink_factory(transport: str) -> SinkFactory:
    """The factory registered for ``transport``; an unknown name suggests the closest."""
    from engine.connectors import ConnectorError, _load_all

    _load_all()
    factory = _SINKS.get(transport)
    if factory is None:
        close = difflib.get_close_matches(transport, sorted(_SINKS), n=1)
        known = (f"Did you mean {close[0]}?" if close
                 else f"Known sinks: {', '.join(sorted(_SINKS))}")
        raise ConnectorError(f"No such sink: {transport}. {known}")
    return factory


def sink_names() -> list[str]:
    from engine.connectors import _load_all

    _load_all()
    return sorted(_SINKS)
