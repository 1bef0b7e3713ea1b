"""Mutations of HL7 v2 messages and FHIR JSON: pure functions of a message and a list
of edits, so that a plan drawn once can be replayed byte for byte.

An edit is ``(operator, a, b, v)``; ``a`` and ``b`` pick a place (taken modulo what the
message has, so any numbers fit any message) and ``v`` a value from :data:`VALUES` or
the seed of random bytes. Gentle operators keep MSH as it is, so the message is still
journaled and goes on to the pipeline; harsh ones may break the header, the framing
of segments or the text's encoding, and most of those end in an AR. No result holds an
MLLP block marker (see :data:`bench.fuzz.seeds.FRAME_MARKERS`)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.fuzz.seeds import FRAME_MARKERS

GENTLE = ("field", "component", "repeat", "escape", "drop_segment", "dup_segment",
          "swap_segments", "new_segment", "truncate_segment", "splice")
HARSH = ("msh_field", "byte_flip", "byte_insert", "byte_delete", "truncate",
         "line_endings", "bom", "separators", "ack_mode")
FHIR_EDITS = ("set", "delete", "duplicate", "nest", "retype", "byte_flip", "byte_insert",
              "truncate")
# MSH fields a harsh edit may change (MSH-n is fields[n - 1]); MSH-15/16 only through
# ack_mode, whose plans the sender handles apart (an ACK may not be owed).
MSH_FIELDS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 17, 18, 19, 20, 21)
ACK_CONDITIONS = (b"", b"AL", b"NE", b"ER", b"SU", b"al", b"XX")
ESCAPES = (b"\\F\\", b"\\S\\", b"\\T\\", b"\\R\\", b"\\E\\", b"\\X0D\\", b"\\X00\\",
           b"\\H\\", b"\\N\\", b"\\.br\\", b"\\Cxxyy\\", b"\\Mxxyyzz\\", b"\\Z99\\", b"\\",
           b"\\X\\", b"\\XZZ\\", b"\\E")
VALUES: tuple[bytes, ...] = (
    b"", b'""', b"0", b"-1", b"1e309", b"NaN", b"99999999999999999999999999", b"-0",
    b"19800101", b"20261124101500", b"20261124101500+0100", b"2026-13-45", b"00000000",
    b"99991231235959.9999-2400", b"2026", b"1", b"F", b"M", b"U", b"MR", b"ADT", b"A08",
    b"ORU", b"R01", b"ZZZ", b"2.5.1", b"9.9", b"UNICODE UTF-8", b"8859/1", b"ISO IR87",
    b"NONSUCH", b"^^^^", b"~~~~", b"&&&&", b"|||", b"\\\\\\", b"\r", b"\n", b"\r\r",
    b"\x00", b"\x00\x00\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\xc3\x28", b"\xe2\x82",
    "Zo\u00eb \u00c5ngstr\u00f6m".encode(), "\u6f22\u5b57".encode(), "\U0001f9ea".encode(),
    "\u00e9".encode("latin-1"), b"%s%n%x", b"'; DROP TABLE journal;--", b"<script>",
    b"${jndi:x}", b"../../etc/passwd", b" ", b"\t", b"MSH|^~\\&|", b"PID|1||",
)
HEADER_SEPARATORS = (b"|^~\\&", b"#^~\\&", b"|||||", b"^|~\\&", b"|^~\\", b"|", b"",
                     b"|^~\\&#", b"\x00^~\\&", b"|\xff~\\&")


@dataclass(frozen=True)
class Edit:
    op: str
    a: int
    b: int
    v: int


def clean(raw: bytes) -> bytes:
    """``raw`` without MLLP block markers."""
    return raw.translate(None, FRAME_MARKERS)


def value(v: int) -> bytes:
    """A value to write: one of :data:`VALUES`, or one that is long or random."""
    kind = v % 8
    if kind < 5:
        return VALUES[v // 8 % len(VALUES)]
    if kind == 5:
        return b"X" * (v // 8 % 9_000)
    return clean(random.Random(v).randbytes(v // 8 % 300))


# ---- HL7 v2 -----------------------------------------------------------------------


def with_ids(segments: Sequence[bytes], control_id: bytes, patient: bytes) -> list[bytes]:
    """``segments`` with MSH-10 ``control_id`` and PID-3 ``patient``: a new message
    for a new patient, so it is neither a duplicate nor held behind another."""
    out = list(segments)
    separator = _separator(out)
    for index, segment in enumerate(out):
        if index == 0 and segment.startswith(b"MSH"):
            out[0] = _set_field(segment, 9, control_id, separator)
        elif segment.startswith(b"PID" + separator):
            out[index] = _set_field(segment, 3, patient + b"^^^FUZZ^MR", separator)
            break
    return out


def mutate_hl7(segments: Sequence[bytes], edits: Sequence[Edit],
               donors: Sequence[Sequence[bytes]]) -> bytes:
    """The message ``segments`` make after ``edits``, as bytes (CR between segments);
    ``donors`` lend segments to ``splice``."""
    out = list(segments)
    raw: bytes | None = None
    for edit in edits:
        if edit.op in _SEGMENT_EDITS:
            if raw is not None:
                out, raw = raw.split(b"\r"), None
            _SEGMENT_EDITS[edit.op](out, edit, donors)
        else:
            raw = _BYTE_EDITS[edit.op](b"\r".join(out) + b"\r" if raw is None else raw, edit)
    return clean(b"\r".join(out) + b"\r" if raw is None else raw)


def _separator(segments: Sequence[bytes]) -> bytes:
    first = segments[0] if segments else b""
    return first[3:4] if first.startswith(b"MSH") and len(first) > 3 else b"|"


def _set_field(segment: bytes, index: int, new: bytes, separator: bytes) -> bytes:
    fields = segment.split(separator)
    if index >= len(fields):
        fields += [b""] * (index + 1 - len(fields))
    fields[index] = new
    return separator.join(fields)


def _body_index(segments: list[bytes], a: int) -> int | None:
    """A segment other than MSH, or None when there is none."""
    return 1 + a % (len(segments) - 1) if len(segments) > 1 else None


def _field(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    index = _body_index(segments, edit.a)
    if index is not None:
        separator = _separator(segments)
        width = max(2, segments[index].count(separator) + 2)
        segments[index] = _set_field(segments[index], 1 + edit.b % width, value(edit.v),
                                     separator)


def _component(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    _insert_in_field(segments, edit, b"^" * (1 + edit.v % 12) + value(edit.v // 12))


def _repeat(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    _insert_in_field(segments, edit, b"~" * (1 + edit.v % 40) + value(edit.v // 40))


def _escape(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    _insert_in_field(segments, edit, ESCAPES[edit.v % len(ESCAPES)])


def _insert_in_field(segments: list[bytes], edit: Edit, text: bytes) -> None:
    index = _body_index(segments, edit.a)
    if index is not None:
        segment = segments[index]
        at = 3 + edit.b % max(1, len(segment) - 2)
        segments[index] = segment[:at] + text + segment[at:]


def _drop_segment(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    index = _body_index(segments, edit.a)
    if index is not None:
        del segments[index]


def _dup_segment(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    index = _body_index(segments, edit.a)
    if index is not None:
        segments[index:index] = [segments[index]] * (1 + edit.v % 30)


def _swap_segments(segments: list[bytes], edit: Edit,
                   donors: Sequence[Sequence[bytes]]) -> None:
    first, second = _body_index(segments, edit.a), _body_index(segments, edit.b)
    if first is not None and second is not None:
        segments[first], segments[second] = segments[second], segments[first]


def _new_segment(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    names = (b"ZZZ", b"ZPD", b"OBX", b"NTE", b"PID", b"PV1", b"MSH", b"EVN", b"Z", b"",
             b"ORC", b"OBR", b"IN1", b"AL1", b"DG1", b"NK1")
    name = names[edit.v % len(names)]
    fields = [value(edit.v // 16 + n) for n in range(edit.b % 12)]
    at = 1 + edit.a % len(segments) if segments else 0
    segments.insert(at, b"|".join([name, *fields]))


def _truncate_segment(segments: list[bytes], edit: Edit,
                      donors: Sequence[Sequence[bytes]]) -> None:
    index = _body_index(segments, edit.a)
    if index is not None:
        separator = _separator(segments)
        fields = segments[index].split(separator)
        segments[index] = separator.join(fields[:1 + edit.b % max(1, len(fields))])


def _splice(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    if donors:
        donor = donors[edit.v % len(donors)]
        if len(donor) > 1:
            taken = donor[1 + edit.b % (len(donor) - 1)]
            segments.insert(1 + edit.a % len(segments) if segments else 0, taken)


def _msh_field(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    if segments:
        number = MSH_FIELDS[edit.a % len(MSH_FIELDS)]
        segments[0] = _set_field(segments[0], number - 1, value(edit.v), _separator(segments))


def _ack_mode(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    if segments:
        separator = _separator(segments)
        segment = _set_field(segments[0], 14, ACK_CONDITIONS[edit.a % len(ACK_CONDITIONS)],
                             separator)
        segments[0] = _set_field(segment, 15, ACK_CONDITIONS[edit.b % len(ACK_CONDITIONS)],
                                 separator)


def _separators(segments: list[bytes], edit: Edit, donors: Sequence[Sequence[bytes]]) -> None:
    if segments and segments[0].startswith(b"MSH"):
        chosen = HEADER_SEPARATORS[edit.v % len(HEADER_SEPARATORS)]
        segments[0] = b"MSH" + chosen + segments[0][8:]


_SEGMENT_EDITS = {
    "field": _field, "component": _component, "repeat": _repeat, "escape": _escape,
    "drop_segment": _drop_segment, "dup_segment": _dup_segment,
    "swap_segments": _swap_segments, "new_segment": _new_segment,
    "truncate_segment": _truncate_segment, "splice": _splice, "msh_field": _msh_field,
    "ack_mode": _ack_mode, "separators": _separators,
}


def _byte_flip(raw: bytes, edit: Edit) -> bytes:
    if not raw:
        return raw
    at = edit.a % len(raw)
    return raw[:at] + bytes([raw[at] ^ (1 + edit.v % 255)]) + raw[at + 1:]


def _byte_insert(raw: bytes, edit: Edit) -> bytes:
    at = edit.a % (len(raw) + 1)
    return raw[:at] + value(edit.v) + raw[at:]


def _byte_delete(raw: bytes, edit: Edit) -> bytes:
    if not raw:
        return raw
    at = edit.a % len(raw)
    return raw[:at] + raw[at + 1 + edit.b % 64:]


def _truncate(raw: bytes, edit: Edit) -> bytes:
    return raw[:edit.a % (len(raw) + 1)]


def _line_endings(raw: bytes, edit: Edit) -> bytes:
    endings = (b"\n", b"\r\n", b"\n\r", b"\r\r", b"")
    return raw.replace(b"\r", endings[edit.v % len(endings)])


def _bom(raw: bytes, edit: Edit) -> bytes:
    prefixes = (b"\xef\xbb\xbf", b"\xff\xfe", b" ", b"\r\n", b"\x00", b"\xef\xbb\xbf" * 2)
    return prefixes[edit.v % len(prefixes)] + raw


_BYTE_EDITS = {"byte_flip": _byte_flip, "byte_insert": _byte_insert,
               "byte_delete": _byte_delete, "truncate": _truncate,
               "line_endings": _line_endings, "bom": _bom}


def random_frame(v: int, length: int) -> bytes:
    """A frame's payload that no corpus gave: random bytes, or random segments of
    random fields (an MSH now and then), ``length`` long at most."""
    generator = random.Random(v)
    if v % 2:
        return clean(generator.randbytes(length))
    segments = []
    size = 0
    while size < length:
        name = generator.choice((b"MSH", b"PID", b"OBX", b"ZZZ", b"EVN", b"XYZ"))
        fields = [clean(generator.randbytes(generator.randrange(0, 12)))
                  for _ in range(generator.randrange(0, 20))]
        segment = b"|".join([name, *fields])
        if name == b"MSH":
            segment = b"MSH|^~\\&|" + b"|".join(fields)
        segments.append(segment)
        size += len(segment) + 1
    return b"\r".join(segments)[:max(length, 1)]


# ---- FHIR JSON ------------------------------------------------------------------------

JSON_VALUES: tuple[Any, ...] = (
    None, "", 0, -1, 1.5, 1e308, -1e308, True, False, [], {}, "2026-13-45",
    "2026-11-24T10:15:00+01:00", "2026", "x" * 5000, "\u0000", "\ud83e\uddea", "urn:uuid:",
    {"resourceType": "Patient"}, [None], [[]], {"reference": "Patient/none"},
    {"reference": "#"}, {"coding": [{"system": None, "code": 5}]}, "Patient/1/_history/x",
)


def with_fhir_ids(document: Any, unique: str) -> Any:
    """A copy of ``document`` whose every resource has an id (and every Patient an
    identifier) of its own: a new resource for a new patient each time."""
    copied = json.loads(json.dumps(document))
    counter = [0]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "resourceType" in node:
                counter[0] += 1
                node["id"] = f"{unique}-{counter[0]}"
                if node["resourceType"] == "Patient":
                    node["identifier"] = [{"system": "urn:fuzz:mrn",
                                           "value": f"{unique}-{counter[0]}"}]
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(copied)
    return copied


def mutate_fhir(document: Any, edits: Sequence[Edit]) -> bytes:
    """``document`` after ``edits``, as the bytes posted (byte edits apply to the text)."""
    node = json.loads(json.dumps(document))
    raw: bytes | None = None
    for edit in edits:
        if edit.op in ("byte_flip", "byte_insert", "truncate"):
            if raw is None:
                raw = dump_fhir(node)
            raw = _BYTE_EDITS[edit.op](raw, edit)
            continue
        if raw is not None:
            continue  # the text no longer parses as a tree to edit
        node = _edit_tree(node, edit)
    return raw if raw is not None else dump_fhir(node)


def _edit_tree(root: Any, edit: Edit) -> Any:
    if edit.op == "nest":
        # Deep nesting: a parser that recurses must refuse it, not fall over.
        depth = edit.v % 20_000
        return _place(root, edit.a, "[" * depth + "]" * depth, raw_json=True)
    replacement = {"set": JSON_VALUES[edit.v % len(JSON_VALUES)],
                   "retype": ("Patient", "Bundle", "Observation", "Nope", "", 7)[edit.v % 6]}
    if edit.op == "retype":
        if isinstance(root, dict):
            root["resourceType"] = replacement["retype"]
        return root
    parent, key = _pick(root, edit.a)
    if parent is None:
        return replacement.get(edit.op, root)
    if edit.op == "set":
        parent[key] = replacement["set"]
    elif edit.op == "delete":
        if isinstance(parent, dict):
            parent.pop(key, None)
        else:
            del parent[key]
    elif edit.op == "duplicate":
        if isinstance(parent, list):
            parent[key:key] = [parent[key]] * (1 + edit.b % 50)
        else:
            parent[f"{key}_{edit.b}"] = parent[key]
    return root


def _pick(root: Any, a: int) -> tuple[Any, Any]:
    """A (container, key) somewhere in ``root``, found by walking down with ``a``."""
    parent, key = None, None
    node = root
    while isinstance(node, dict | list) and node:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        chosen = keys[a % len(keys)]
        parent, key = node, chosen
        a //= len(keys) + 1
        if a == 0:
            break
        node = node[chosen]
    return parent, key


def _place(root: Any, a: int, text: str, *, raw_json: bool) -> Any:
    """``root`` with the JSON ``text`` put at a place ``a`` picks (as a marker that is
    swapped for the raw text when the document is written)."""
    parent, key = _pick(root, a)
    marker = {"__raw__": text} if raw_json else text
    if parent is None:
        return marker
    parent[key] = marker
    return root


def dump_fhir(node: Any) -> bytes:
    """The JSON text of ``node``, raw markers written as they are."""
    text = json.dumps(node)
    marker = '{"__raw__": "'
    while marker in text:
        start = text.index(marker)
        end = text.index('"}', start)
        text = text[:start] + text[start + len(marker):end] + text[end + 2:]
    return text.encode()
