"""``switchboard send HOST:PORT FILE...``: send HL7 v2 messages over MLLP, exactly as
written in the files, and print one line per message with its ACK.

A file may hold several messages, each starting with MSH on a new line. Exit codes:
0 every message accepted, 1 a negative ACK (AE/AR/CE/CR), an unreadable ACK or no ACK
in time, 2 the target cannot be reached or a file cannot be read. After a timeout or a
lost connection the remaining messages are not sent: they would overtake one whose
fate is unknown.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from engine.connectors.mllp.client import AckTimeout, BlockingMllpClient, MllpConnectionError
from engine.errors import SwitchboardError
from engine.hl7v2 import parse, read_header
from engine.hl7v2.ack import ack_modes

OK, FAILED, UNREACHABLE = 0, 1, 2
_POSITIVE = frozenset({"AA", "CA"})
# A message starts at the beginning of the data or at a line that starts with MSH.
_MESSAGE_START = re.compile(rb"(?<=[\r\n])(?=MSH)")


class TargetError(SwitchboardError):
    """The HOST:PORT argument cannot be used."""


@dataclass(frozen=True)
class Outgoing:
    """One message to send, with where it came from for the report."""

    label: str
    payload: bytes


def send_command(target: str, files: list[str], timeout: float,
                 out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Send every message of ``files`` to ``target`` in order; every file is read
    before anything is sent, so a missing file does not leave a batch half sent."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        host, port = parse_target(target)
        outgoing = [message for name in files for message in _read_messages(name, err)]
    except TargetError as exc:
        print(f"switchboard send: {exc}", file=err)
        return UNREACHABLE
    except OSError as exc:
        print(f"switchboard send: cannot read {exc.filename}: {exc.strerror}", file=err)
        return UNREACHABLE
    if not outgoing:
        print("switchboard send: no HL7 v2 message to send", file=err)
        return FAILED
    with BlockingMllpClient(host, port, timeout) as client:
        return _send_all(client, outgoing, out)


def parse_target(target: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:2575`` for IPv6) as a host and a port number."""
    host, _, port = target.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TargetError(f"{target!r} is not HOST:PORT",
                          hint="Write the listener's address as mllp.example.org:2575")
    return host, int(port)


def split_messages(data: bytes) -> list[bytes]:
    """The messages in ``data``, byte for byte (line endings included). Bytes before
    the first MSH are sent as a message of their own when they are not blank, so the
    receiver rejects them visibly instead of this tool dropping them quietly."""
    starts = [0, *(match.start() for match in _MESSAGE_START.finditer(data))]
    ends = [*starts[1:], len(data)]
    return [data[start:end] for start, end in zip(starts, ends, strict=True)
            if data[start:end].strip()]


def _read_messages(name: str, err: TextIO) -> Iterator[Outgoing]:
    data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    label = "<stdin>" if name == "-" else name
    messages = split_messages(data)
    if not messages:
        print(f"switchboard send: {label}: no HL7 v2 message found", file=err)
    for number, payload in enumerate(messages, start=1):
        yield Outgoing(f"{label} message {number}", payload)


def _send_all(client: BlockingMllpClient, outgoing: list[Outgoing], out: TextIO) -> int:
    status = OK
    for index, message in enumerate(outgoing):
        line, outcome, give_up = _send_one(client, message.payload)
        print(f"{message.label}: {line}", file=out, flush=True)
        status = max(status, outcome)
        if give_up:
            for skipped in outgoing[index + 1:]:
                print(f"{skipped.label}: not sent (an earlier message got no ACK)", file=out)
            break
    return status


def _send_one(client: BlockingMllpClient, payload: bytes) -> tuple[str, int, bool]:
    """(report line, exit status it calls for, whether to send nothing more)."""
    accept_mode, control_id = _header_facts(payload)
    try:
        if accept_mode == "NE":
            client.write(payload)
            return "sent (MSH-15 is NE: no ACK expected)", OK, False
        ack = client.send(payload)
    except AckTimeout as exc:
        if accept_mode == "ER":
            return "no ACK (MSH-15 is ER: no news is acceptance)", OK, False
        return str(exc), FAILED, True
    except MllpConnectionError as exc:
        return str(exc), UNREACHABLE, True
    except SwitchboardError as exc:  # a VT/FS byte in the message, or an oversize ACK
        return f"not sent: {exc}", FAILED, False
    line, failed = describe_ack(ack, control_id)
    return line, FAILED if failed else OK, False


def describe_ack(ack: bytes, control_id: str | None) -> tuple[str, bool]:
    """``AA``, or ``AR: <ERR-8 or MSA-3>``, and whether it is a failure; an ACK for
    another message (MSA-2 is not the MSH-10 sent) is a failure too."""
    try:
        message = parse(ack)
    except SwitchboardError as exc:
        return f"unreadable ACK: {exc}", True
    code = message.get("MSA-1") or "no MSA-1"
    text = message.get("ERR-8") or message.get("MSA-3") or ""
    line = f"{code}: {text}" if text else code
    failed = code not in _POSITIVE
    echoed = message.get("MSA-2") or ""
    if control_id and echoed != control_id:
        line += f" (MSA-2 {echoed!r} is not the MSH-10 sent, {control_id!r})"
        failed = True
    return line, failed


def _header_facts(payload: bytes) -> tuple[str, str | None]:
    """MSH-15 in enhanced mode ('' in original mode) and MSH-10, when MSH can be read."""
    try:
        header = read_header(payload)
    except SwitchboardError:
        return "", None
    modes = ack_modes(header)
    accept = modes.accept.upper() if modes.enhanced else ""
    return accept, header.get("MSH-10") or None
