"""HL7 v2 escape sequences (chapter 2.7): unescape on read, escape on write."""

from __future__ import annotations

import re

from engine.hl7v2.separators import Separators

# Formatting commands that carry no text of their own in a plain value.
_DROPPED = frozenset({"H", "N", ".fi", ".nf", ".ce"})
_HEX = re.compile(r"X((?:[0-9A-Fa-f]{2})+)")
_FORMAT_WITH_COUNT = re.compile(r"\.(sp|in|ti|sk)([+-]?\d{0,9})")
_MAX_FORMAT_REPEAT = 100


def unescape(text: str, seps: Separators, codec: str = "utf-8") -> str:
    """Decode escape sequences in one primitive value.

    Covered: ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (and ``\\P\\`` when MSH-2 declares a
    truncation character), ``\\Xhh..\\`` (bytes in the message's charset), ``\\.br\\``
    and ``\\.sp\\`` (line breaks), ``\\.sk n\\`` (spaces). Highlighting and layout
    commands (``\\H\\ \\N\\ \\.in\\ \\.ti\\ \\.fi\\ \\.nf\\ \\.ce\\``) are dropped.
    Sequences Switchboard cannot honour (``\\Zxx\\``, ``\\Cxxyy\\``, ``\\Mxxyyzz\\``) and
    an escape character with no closing partner stay as literal text, so nothing a
    sender wrote is silently lost.
    """
    esc = seps.escape
    if not esc or esc not in text:
        return text
    out: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        start = text.find(esc, pos)
        if start < 0:
            out.append(text[pos:])
            break
        end = text.find(esc, start + 1)
        if end < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:start])
        decoded = _decode_sequence(text[start + 1 : end], seps, codec)
        if decoded is None:
            # Not a sequence we know: keep the opening escape literally and go on after
            # it, so that "C:\dir\file" style text survives unchanged.
            out.append(esc)
            pos = start + 1
        else:
            out.append(decoded)
            pos = end + 1
    return "".join(out)


def _decode_sequence(body: str, seps: Separators, codec: str) -> str | None:
    simple = seps.unescape_table.get(body)
    if simple is not None:
        return simple
    if body in _DROPPED:
        return ""
    if body == ".br":
        return "\n"
    hexed = _HEX.fullmatch(body)
    if hexed:
        raw = bytes.fromhex(hexed.group(1))
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    counted = _FORMAT_WITH_COUNT.fullmatch(body)
    if counted:
        kind, count_text = counted.groups()
        count = abs(int(count_text)) if count_text.lstrip("+-") else 1
        # A sender cannot make one escape expand into megabytes.
        count = min(count, _MAX_FORMAT_REPEAT)
        if kind == "sp":
            return "\n" * max(count, 1)
        if kind == "sk":
            return " " * count
        return ""
    return None


def escape(value: str, seps: Separators) -> str:
    """Encode a plain value so it can be written into any position of the message.

    Every delimiter becomes its escape sequence; LF becomes ``\\.br\\`` and CR
    ``\\X0D\\`` so that ``unescape(escape(v)) == v`` for every string.
    """
    return value.translate(seps.escape_translation)
