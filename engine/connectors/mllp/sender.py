"""The MLLP sink: deliver HL7 v2 messages to a destination's MLLP listener and wait for
each ACK, over one connection kept from one delivery to the next.

MSH-10 is the idempotency key: the encoder derives it from the message and the
destination, so a retry after a lost ACK carries the same MSH-10 and the receiver can
drop the repeat. ACKs are matched to messages by order, so an ACK for another message
means the stream is out of step: the connection is dropped and the next send starts a
new one. A destination's ACK text can echo the message, so only its codes are kept.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine

from engine.connectors import ConnectorError
from engine.connectors.mllp.client import AckTimeout, BlockingMllpClient, MllpConnectionError
from engine.connectors.sink import DeliveryFailed, Outbound
from engine.errors import EditError, FrameTooLargeError, FramingError, SwitchboardError
from engine.hl7v2 import Message, parse
from engine.hl7v2.ack import TABLE_0357
from engine.rules.catalog_entry import Connection, MllpEndpoint
from engine.rules.exception_policy import ErrorClass

__all__ = ["MllpSender", "mllp_sender"]

_ACCEPTED: Final = frozenset({"AA", "CA"})
_REFUSED: Final = frozenset({"AE", "AR", "CE", "CR"})
# An error code is kept in the reason only when it looks like a code: the field is
# free for the destination to fill, and free text can carry patient data.
_CODE: Final = re.compile(r"[A-Za-z0-9._-]{1,20}")
_RETRY_HINT: Final = "Retry the delivery; the receiver recognises a repeat by its MSH-10"


def mllp_sender(connection: Connection, _store: Engine) -> MllpSender:
    """The ``mllp`` sink factory: a sender for the connection's MLLP endpoint, unconnected."""
    if not isinstance(connection.endpoint, MllpEndpoint):
        raise ConnectorError(
            f"connection {connection.id!r} has no MLLP endpoint, so it cannot use the mllp sink",
            hint="Give its endpoint a host and a port, or change its transport",
        )
    return MllpSender(connection.endpoint)


@dataclass(frozen=True)
class _Ack:
    """What a readable ACK says: MSA-1, MSA-2 and the first ERR's code, if any."""

    code: str
    control_id: str
    error: str


class MllpSender:
    """Sends each delivery over one kept MLLP connection and waits up to ``ack_timeout``
    seconds (the endpoint's unless given) for the connect, the write and the ACK."""

    def __init__(self, endpoint: MllpEndpoint, *, ack_timeout: float | None = None) -> None:
        self.endpoint = endpoint
        self.ack_timeout = endpoint.ack_timeout if ack_timeout is None else ack_timeout
        self._client: BlockingMllpClient | None = None

    def send(self, outbound: Outbound) -> None:
        """Deliver ``outbound.body``; returns once the destination answered AA or CA."""
        message = _message(outbound)
        ack = self._exchange(_payload(message, outbound.destination), outbound.destination)
        self._check(ack, message.get("MSH-10") or "", outbound.destination)

    def close(self) -> None:
        """Close the connection, if one is open; never raises."""
        client, self._client = self._client, None
        if client is not None:
            with suppress(Exception):  # the contract: closing a sink never fails
                client.close()

    def _connection(self) -> BlockingMllpClient:
        if self._client is None:
            self._client = BlockingMllpClient(
                self.endpoint.host, self.endpoint.port, self.ack_timeout)
        return self._client

    def _exchange(self, payload: bytes, destination: str) -> bytes:
        """Send one framed message and return the ACK's payload, or raise DeliveryFailed."""
        try:
            return self._connection().send(payload)
        except AckTimeout as exc:  # the client has closed the connection already
            raise DeliveryFailed(ErrorClass.TIMEOUT, f"{destination}: {exc.reason}",
                                 hint=exc.hint) from None
        except MllpConnectionError as exc:
            raise DeliveryFailed(ErrorClass.TRANSPORT_ERROR, f"{destination}: {exc.reason}",
                                 hint=exc.hint) from None
        except FrameTooLargeError:
            raise self._out_of_step(destination, "answered with an oversized ACK") from None
        except FramingError as exc:  # a VT or FS byte in the message: nothing was sent
            raise DeliveryFailed(ErrorClass.VALIDATION, f"{destination}: {exc.reason}",
                                 hint=exc.hint) from None

    def _check(self, payload: bytes, control_id: str, destination: str) -> None:
        """Return when the ACK accepts the message sent; raise DeliveryFailed otherwise."""
        ack = _read_ack(payload)
        if ack is None:
            raise self._out_of_step(destination, "answered with something that is not an ACK")
        if ack.control_id != control_id:
            raise self._out_of_step(
                destination, "acknowledged another message (MSA-2 is not the MSH-10 sent)")
        if ack.code in _REFUSED:
            error = f": error {ack.error}" if ack.error else ""
            raise DeliveryFailed(
                ErrorClass.REJECTED, f"{destination} answered {ack.code}{error}",
                hint="Read why in the destination's interface log (its ACK text is not kept: "
                "it may echo patient data), fix the cause, then retry the delivery",
            )

    def _out_of_step(self, destination: str, what: str) -> DeliveryFailed:
        """Drop the connection (which message the next frame answers is unknown) and
        say why."""
        self.close()
        return DeliveryFailed(
            ErrorClass.TRANSPORT_ERROR, f"{destination} {what}; the connection was closed",
            hint=_RETRY_HINT)


def _message(outbound: Outbound) -> Message:
    """The body as a message: MSH-10 is compared with the ACK's MSA-2, MSH-18 says how
    to encode it."""
    try:
        message = parse(outbound.body)
    except SwitchboardError:
        raise DeliveryFailed(
            ErrorClass.VALIDATION, f"{outbound.destination}: the body is not an HL7 v2 message",
            hint="Check that the connection's catalog format is hl7v2") from None
    if not message.get("MSH-10"):
        raise DeliveryFailed(
            ErrorClass.VALIDATION, f"{outbound.destination}: the message has no MSH-10, so a "
            "retry could not be told from a new message", hint="Encode it with MSH-10 set")
    return message


def _payload(message: Message, destination: str) -> bytes:
    """The message's bytes in the character set its MSH-18 names."""
    try:
        return message.encode()
    except EditError as exc:
        raise DeliveryFailed(ErrorClass.VALIDATION, f"{destination}: {exc.reason}",
                             hint=exc.hint) from None


def _read_ack(payload: bytes) -> _Ack | None:
    """What the ACK says, or None when it is not an ACK with a known MSA-1 code."""
    try:
        ack = parse(payload)
        code = (ack.get("MSA-1") or "").strip().upper()
        control_id = ack.get("MSA-2") or ""
        error = _error_code(ack)
    except SwitchboardError:
        return None
    if code not in _ACCEPTED | _REFUSED:
        return None
    return _Ack(code, control_id, error)


def _error_code(ack: Message) -> str:
    """The first ERR's code and its table, as ``103 (HL70357 Table value not found)``:
    ERR-3 from v2.5 on, the code inside ERR-1 before; '' when there is none."""
    code = ack.get("ERR-3.1") or ack.get("ERR-1.4.1") or ""
    table = ack.get("ERR-3.3") or ack.get("ERR-1.4.3") or ""
    if not _CODE.fullmatch(code):
        return ""
    if not _CODE.fullmatch(table):
        return code
    # The standard label is ours to print; the destination's own text is not kept.
    label = TABLE_0357.get(int(code)) if table == "HL70357" and code.isdigit() else None
    return f"{code} ({table} {label})" if label else f"{code} ({table})"
