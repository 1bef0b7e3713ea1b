"""An exception item's signature: what makes failures "the same problem", so that an
operator can see one line with a count, and act on the whole group, rather than a
hundred lines that differ only in an attempt count or a message id.

Two items share a signature when they name the same connection and error class and
their summaries match once the parts that vary from one failure to the next (numbers,
UUIDs, long hexadecimal ids) are masked. What names the problem is kept as written:
the connection's own name, HL7 paths (``PID-3.1``, ``OBX[*]-5``) and HTTP statuses
(``HTTP 503``): a failure on PID-3 is not the one on PID-5, nor a 503 a 404.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

NUMBER = "#"
ID = "<id>"
KEY_LENGTH = 16  # hex digits of the key: 64 bits, ample for the groups of one store

_MASK = re.compile(
    r"(?P<keep>\b[A-Z][A-Z0-9]{2}(?:\[(?:\*|\d+)\])?-\d{1,2}(?:\.\d{1,2}){0,2}\b"  # PID-3.1
    r"|\bHTTP[ /]\d{3}\b)"  # HTTP 503
    r"|(?P<uuid>\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b)"
    r"|(?P<hex>\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}\b)"
    r"|(?P<number>\d+(?:[.,:]\d+)*)")
_KEY = re.compile(rf"[0-9a-f]{{{KEY_LENGTH}}}")


@dataclass(frozen=True)
class Signature:
    """A group's key (short, for a URL), and what it stands for."""

    key: str
    connection: str | None
    error_class: str
    pattern: str


def summary_pattern(summary: str, connection: str | None = None) -> str:
    """``summary`` with what varies between failures masked: numbers as ``#``, UUIDs
    and long hexadecimal ids as ``<id>``; ``connection``'s name stays as written."""
    if connection:
        return connection.join(_masked(part) for part in summary.split(connection))
    return _masked(summary)


def signature_of(connection: str | None, error_class: str, summary: str) -> Signature:
    pattern = summary_pattern(summary, connection)
    return Signature(signature_key(connection, error_class, pattern), connection,
                     error_class, pattern)


def signature_key(connection: str | None, error_class: str, pattern: str) -> str:
    """The same key on every machine and in every process for the same group."""
    text = json.dumps([connection, error_class, pattern], ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def is_key(value: str) -> bool:
    return bool(_KEY.fullmatch(value))


def like_pattern(pattern: str, escape: str = "\\") -> str:
    """A SQL LIKE pattern that every summary with ``pattern`` matches (and a few that
    do not: a masked part becomes ``%``), for a store to narrow its search before
    :func:`signature_of` decides."""
    literal = (re.escape(NUMBER), re.escape(ID))
    pieces = re.split(f"({'|'.join(literal)})", pattern)
    return "".join("%" if piece in (NUMBER, ID) else _like_literal(piece, escape)
                   for piece in pieces)


def _masked(text: str) -> str:
    return _MASK.sub(_replacement, text)


def _replacement(match: re.Match[str]) -> str:
    if match["keep"]:
        return match["keep"]
    return NUMBER if match["number"] else ID


def _like_literal(text: str, escape: str) -> str:
    return "".join(escape + char if char in ("%", "_", escape) else char for char in text)
