"""The file sink: write each delivery as one file in the destination's directory,
named from the delivery so that a retry rewrites the same file.

A reader of the directory sees a file whole or not at all: the bytes go to a hidden
temporary file in the same directory (drop-folder pollers skip names starting with
"."), are flushed to disk and renamed over the final name, and the directory is
flushed too, so that a crash cannot lose a file already reported delivered.

File names are built only from letters, digits, ".", "_" and "-", and never start
with ".": a pattern cannot name a file outside the directory, whatever the values.
"""

from __future__ import annotations

import os
import re
import secrets
import string
from contextlib import suppress
from pathlib import Path
from typing import Final

from sqlalchemy import Engine

from engine.connectors import ConnectorError
from engine.connectors.sink import DeliveryFailed, Outbound
from engine.durable_file import sync_directory
from engine.encoders import outbound_control_id
from engine.encoders.hl7v2 import MEDIA_TYPE as HL7V2_MEDIA_TYPE
from engine.errors import EditError, SwitchboardError
from engine.hl7v2 import parse
from engine.rules.catalog_entry import Connection, FileEndpoint
from engine.rules.exception_policy import ErrorClass

__all__ = ["PLACEHOLDERS", "FileWriter", "file_writer"]

PLACEHOLDERS: Final = ("control_id", "message_id", "idempotency_key", "destination")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_INBOUND_GLOB: Final = "*"

# A pattern as its parts: literal text, then the placeholder after it (None at the end).
Pattern = tuple[tuple[str, str | None], ...]


def file_writer(connection: Connection, _store: Engine) -> FileWriter:
    """The ``file`` sink factory: a writer for the connection's directory and pattern."""
    if not isinstance(connection.endpoint, FileEndpoint):
        raise ConnectorError(
            f"connection {connection.id!r} has no file endpoint, so it cannot use the file sink",
            hint="Give its endpoint a directory, or change its transport",
        )
    return FileWriter(connection.endpoint)


class FileWriter:
    """Writes each delivery atomically into one directory, which it creates when missing."""

    def __init__(self, endpoint: FileEndpoint) -> None:
        self.directory = Path(endpoint.directory)
        self.pattern = parse_pattern(endpoint.pattern)

    def send(self, outbound: Outbound) -> None:
        """Write ``outbound.body`` under its file name; returns once it is on disk."""
        name = file_name(self.pattern, outbound)
        data = _file_bytes(outbound)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.directory, name, data)
        except OSError as exc:
            raise DeliveryFailed(
                ErrorClass.TRANSPORT_ERROR,
                f"{outbound.destination}: cannot write into {self.directory}: "
                f"{exc.strerror or type(exc).__name__}",
                hint="Check that the directory can be created, that Switchboard may write "
                "into it and that the disk has space, then retry the delivery",
            ) from None

    def close(self) -> None:
        """Nothing to release: every send opens and closes its own files."""


def parse_pattern(pattern: str) -> Pattern:
    """The parts of an endpoint's file name pattern; refuses unknown placeholders and
    text that is not safe in a file name (ConnectorError, at construction)."""
    if pattern == _INBOUND_GLOB:
        return ()  # the catalog default: name the file by its idempotency key
    # "*" is how an inbound pattern says "any name"; here it takes the delivery's key.
    template = pattern.replace("*", "{idempotency_key}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise ConnectorError(f"file pattern {pattern!r} has an unmatched brace",
                             hint="Write placeholders as {control_id}") from None
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        _check_part(pattern, literal, field, bool(spec or conversion))
        parts.append((literal, field))
    if pattern.startswith("."):
        raise ConnectorError(f"file pattern {pattern!r} names hidden files, which pollers skip",
                             hint="Start the pattern with a letter, a digit or a placeholder")
    return tuple(parts) if any(field for _literal, field in parts) else ()


def _check_part(pattern: str, literal: str, field: str | None, formatted: bool) -> None:
    """Refuse text unsafe in a file name and placeholders the writer does not fill."""
    if _UNSAFE.search(literal):
        raise ConnectorError(
            f"file pattern {pattern!r} holds characters that are not safe in a file name",
            hint="Use letters, digits, '.', '_' and '-' around the placeholders")
    known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    if field is not None and field not in PLACEHOLDERS:
        raise ConnectorError(f"file pattern {pattern!r}: unknown placeholder {{{field}}}",
                             hint=f"Use {known}")
    if field is not None and formatted:
        raise ConnectorError(
            f"file pattern {pattern!r}: placeholder {{{field}}} cannot take a format or "
            "a conversion", hint=f"Write it plainly, as {{{field}}}")


def file_name(pattern: Pattern, outbound: Outbound) -> str:
    """The file name of one delivery: the same on every retry, safe by construction."""
    parts = pattern or (("", "idempotency_key"), (_extension(outbound.media_type), None))
    values = {
        "control_id": outbound_control_id(outbound.message_id, outbound.destination),
        "message_id": outbound.message_id,
        "idempotency_key": outbound.idempotency_key,
        "destination": outbound.destination,
    }
    name = "".join(literal + ("" if field is None else _safe(values[field]))
                   for literal, field in parts)
    # A leading "." would hide the file from pollers (and could make "." or "..").
    return "_" + name[1:] if name.startswith(".") else name


def _safe(value: str) -> str:
    """``value`` with every character that is not safe in a file name replaced by '_'."""
    return _UNSAFE.sub("_", value) or "_"


def _extension(media_type: str) -> str:
    essence = media_type.split(";")[0].strip().lower()
    if essence == HL7V2_MEDIA_TYPE:
        return ".hl7"
    if essence == "application/json" or essence.endswith("+json"):
        return ".json"
    return ".txt"


def _file_bytes(outbound: Outbound) -> bytes:
    """The body as bytes: HL7 v2 in the character set its MSH-18 names, others as UTF-8."""
    try:
        if outbound.media_type.split(";")[0].strip().lower() == HL7V2_MEDIA_TYPE:
            return parse(outbound.body).encode()
        return outbound.body.encode("utf-8")
    except EditError as exc:  # names the character set, not the character
        reason = exc.reason
    except UnicodeEncodeError:
        reason = "the body holds a character UTF-8 cannot represent"
    except SwitchboardError:  # the parser's text could quote the body
        reason = "the body is not an HL7 v2 message"
    raise DeliveryFailed(ErrorClass.VALIDATION, f"{outbound.destination}: {reason}",
                         hint="Fix the encoder or the catalog format, then retry the delivery")


def _write_atomically(directory: Path, name: str, data: bytes) -> None:
    """Put ``data`` at ``directory/name`` whole, through a hidden temporary file."""
    temporary = directory / f".{name}.{secrets.token_hex(6)}.tmp"
    # os.open, not mkstemp: the file gets the process umask's permissions, as any
    # file Switchboard writes, rather than mkstemp's owner-only 0600.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, directory / name)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    sync_directory(directory)
