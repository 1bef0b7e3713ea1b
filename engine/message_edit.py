"""Editing a failed message or delivery body by hand before it is reprocessed: the
original as a person edits it (an HL7 v2 segment a line, JSON indented), the edit back
as it is sent (segments ended by CR), and the difference between the two as a unified
diff. Pure: no I/O."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Literal

from engine.errors import SwitchboardError
from engine.hl7v2.message import header_codec

Kind = Literal["hl7v2", "json", "text"]
HL7V2: Kind = "hl7v2"
JSON: Kind = "json"
TEXT: Kind = "text"
_LINES = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Original:
    """What a reprocess replaces, as text: a delivery's encoded body (``what`` is
    "delivery", ``target`` its id) or a message as received ("message", its id)."""

    kind: Kind
    what: str
    target: str
    text: str

    @property
    def editable(self) -> str:
        return editable_text(self.text, self.kind)


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff: ``kind`` is head, hunk, add, del or same."""

    kind: str
    text: str


def kind_of_media(media_type: str | None) -> Kind:
    kind = media_type or ""
    return HL7V2 if "hl7-v2" in kind else JSON if "json" in kind else TEXT


def message_text(raw: bytes, is_fhir: bool, charset: str | None = None) -> str:
    """A journaled message's bytes as text: FHIR JSON as UTF-8, HL7 v2 in the character
    set its MSH-18 names (``charset`` when it names none); what cannot be decoded shows
    as U+FFFD rather than hiding the message."""
    codec = "utf-8"
    if not is_fhir:
        header = _LINES.split(raw.decode("latin-1"), maxsplit=1)[0]
        try:
            codec = header_codec(header, charset)
        except SwitchboardError:
            codec = "utf-8"
    return raw.decode(codec, errors="replace")


def editable_text(text: str, kind: Kind) -> str:
    """``text`` as a person edits it: HL7 v2 a segment a line, JSON indented."""
    if kind == HL7V2:
        return "\n".join(_lines(text))
    if kind == JSON:
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return "\n".join(_LINES.split(text))
    return "\n".join(_LINES.split(text))


def edited_body(text: str, kind: Kind) -> str:
    """What a person typed (a browser sends CR LF) as it is sent: HL7 v2 segments each
    ended by CR, blank lines dropped; other text with LF line ends."""
    if kind == HL7V2:
        return "".join(f"{segment}\r" for segment in _lines(text))
    return "\n".join(_LINES.split(text))


def edit_diff(before: str, after: str) -> list[DiffLine]:
    """``after`` against ``before``, line by line, as a unified diff with three lines
    of context; empty when they do not differ."""
    lines = list(difflib.unified_diff(_split(before), _split(after),
                                      "original", "edited", lineterm=""))
    return [DiffLine("head", line) if number < 2 else DiffLine(_line_kind(line), line)
            for number, line in enumerate(lines)]


def _split(text: str) -> list[str]:
    """Lines, a last line end not making an empty line of its own."""
    lines = _LINES.split(text)
    return lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines


def _lines(text: str) -> list[str]:
    return [line for line in _LINES.split(text) if line.strip()]


def _line_kind(line: str) -> str:
    return {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "same")
