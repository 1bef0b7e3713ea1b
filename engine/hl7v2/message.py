"""The HL7 v2 message: lazy parsing, path access and editing.

See the package docstring (``engine.hl7v2``) for the path and value semantics.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any, AnyStr

from engine.errors import EditError, ParseError, PathError
from engine.hl7v2.charset import DEFAULT_CODEC, codec_for
from engine.hl7v2.escape import escape, unescape
from engine.hl7v2.path import _CACHE as _PATHS
from engine.hl7v2.path import ALL, Path, parse_path
from engine.hl7v2.separators import Separators, separators_from

_BOM = b"\xef\xbb\xbf"
_EOL_SPLIT = re.compile(r"\r\n|\r|\n")
_EOL_KEEP = re.compile(r"(\r\n|\r|\n)")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
# Header segments carry the separators in fields 1 and 2 instead of data.
_HEADERS = frozenset({"MSH", "BHS", "FHS"})
# Segment keys (ID + field separator) seen valid so far, so that checking a message's
# segments is one set comparison in the common case.
_KNOWN_KEYS: set[str] = set()


@dataclass(frozen=True)
class ParseWarning:
    """Something odd the parser tolerated. Never carries message content (PHI)."""

    code: str
    text: str
    segment_number: int | None = None
    field: int | None = None  # where in that segment, when the parser knows

    def __str__(self) -> str:
        where = f"segment {self.segment_number}: " if self.segment_number else ""
        return f"{where}{self.text}"


def parse(data: bytes | bytearray | memoryview | str, charset: str | None = None) -> Message:
    """Parse one HL7 v2 message; ``ParseError`` says what is wrong and where.

    ``charset`` (an HL7 table 0211 name, e.g. ``8859/1``) is what bytes are taken to be
    when MSH-18 names no character set: a connection's default for a feed that never
    declares one. UTF-8 when not given."""
    default = _default_codec(charset)
    if type(data) is bytes:
        raw = data
    elif isinstance(data, str):
        return _parse_text(data, raw=None, codec=None, warnings=[], default=default)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        raise ParseError(
            f"an HL7 v2 message must be bytes or str, not {type(data).__name__}"
        )
    body = raw[3:] if raw.startswith(_BOM) else raw
    body = body.lstrip()
    # Decode as UTF-8 first: it is what almost every feed sends, and the header needed
    # to find MSH-18 is ASCII in every charset Switchboard reads.
    text, problem = _decode(body, DEFAULT_CODEC)
    warnings: list[ParseWarning] = []
    message = _parse_text(text, raw=raw, codec=None, warnings=warnings, default=default)
    if message.codec != DEFAULT_CODEC:
        text, problem = _decode(body, message.codec)
        message = _parse_text(text, raw=raw, codec=message.codec, warnings=warnings,
                              default=default)
    if problem is not None:
        lines = _EOL_SPLIT.split(body[: problem.start].decode("latin-1"))
        field = lines[-1].count(message.separators.field) + (lines[-1][:3] in _HEADERS)
        warnings.append(
            ParseWarning(
                "undecodable-bytes",
                f"bytes from offset {problem.start} are not valid {message.codec}; "
                "they are kept as they were sent",
                len(lines), field or None,
            )
        )
    return message


def text_error(message: Message) -> ParseError | None:
    """Where ``message`` holds what cannot be text, as a ParseError naming the segment
    and field: bytes its character set cannot decode (MSH-18, UTF-8 when it names
    none), or a NUL (no HL7 data type allows it, and PostgreSQL cannot store it in
    text). None when there is neither. ``parse`` keeps such bytes, so a message can be
    stored and sent on exactly; text that drives routing must not be built from them."""
    undecodable = next((warning for warning in message.warnings
                        if warning.code == "undecodable-bytes"), None)
    if undecodable is None and "\x00" not in message._text:
        return None
    field_sep = message.separators.field
    occurrences: dict[str, int] = {}
    for number, segment in enumerate(message.segment_texts(), start=1):
        segment_id = segment[:3]
        occurrences[segment_id] = occurrences.get(segment_id, 0) + 1
        found = _NOT_TEXT.search(segment)
        if found is not None:
            field = segment.count(field_sep, 0, found.start())
            if segment_id in _HEADERS:
                field += 1  # MSH-1 is the separator itself: MSH-n follows n - 1 of them
        elif undecodable is not None and number == undecodable.segment_number:
            # A broken sequence of ASCII bytes (an ISO 2022 escape) is kept as it was
            # and leaves no mark in the text: it is where the decoding stopped.
            field = undecodable.field or 0
        else:
            continue
        if found is not None and found.group() == "\x00":
            reason = "holds a NUL byte, which no HL7 v2 data type allows"
            hint = "Remove the NUL bytes from the message"
        else:
            reason = (f"holds bytes that are not valid {message.codec}, the character set "
                      "MSH-18 declares" if message.get("MSH-18") else
                      f"holds bytes that are not valid {message.codec}, the character set "
                      "taken when MSH-18 is empty (the connection's, or UTF-8)")
            hint = "Send the message in the character set MSH-18 names, or name the one it is in"
        return ParseError(reason, segment=segment_id, segment_number=number,
                          field=field or None, occurrence=occurrences[segment_id], hint=hint)
    return None


# A NUL, or what surrogateescape makes of a byte that did not decode.
_NOT_TEXT = re.compile("[\\x00\\udc80-\\udcff]")


def _keep_bytes(error: UnicodeError) -> tuple[str, int]:
    """surrogateescape, except that an ASCII byte inside a bad sequence is kept as
    itself: the ISO 2022 decoders report a broken escape sequence with its ASCII bytes,
    which surrogateescape refuses, so the decode would fail after all."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start:error.end]
    return "".join(chr(0xDC00 + b) if b >= 0x80 else chr(b) for b in bad), error.end


codecs.register_error("switchboard.keep_bytes", _keep_bytes)


def _decode(body: bytes, codec: str) -> tuple[str, UnicodeDecodeError | None]:
    try:
        return body.decode(codec), None
    except UnicodeDecodeError as exc:
        # Undecodable bytes are kept as surrogateescape keeps them, so encode() can give
        # them back.
        return body.decode(codec, "switchboard.keep_bytes"), exc


def read_header(data: bytes | str) -> Message:
    """Parse only the first segment (MSH): enough to address an ACK for a message whose
    body is too large or too broken to parse."""
    if isinstance(data, str):
        return parse(_first_line(data.lstrip("\ufeff").lstrip()))
    body = data[3:] if data.startswith(_BOM) else data
    return parse(_first_line(bytes(body).lstrip()))


def _first_line(text: AnyStr) -> AnyStr:
    cut = len(text)
    for eol in _LINE_ENDS[type(text)]:
        found = text.find(eol)
        if 0 <= found < cut:
            cut = found
    return text[:cut]


_LINE_ENDS: dict[type, tuple[Any, Any]] = {str: ("\r", "\n"), bytes: (b"\r", b"\n")}


def header_codec(header: str, charset: str | None = None) -> str:
    """The codec for the character set MSH-18 of ``header`` (an MSH segment's text)
    names, as parsing would choose it: ``charset``'s (UTF-8's when None) when it names
    none or an unknown one."""
    default = _default_codec(charset)
    if len(header) < 4 or header.count(header[3]) < 17:
        return default
    return _codec_from_header(header, [], default)


def _default_codec(charset: str | None) -> str:
    if charset is None:
        return DEFAULT_CODEC
    codec = codec_for(charset)
    if codec is None:
        raise ParseError(f"{charset!r} is not a character set Switchboard knows",
                         hint="Name one from HL7 table 0211, such as 8859/1 or UNICODE UTF-8")
    return codec


def _codec_from_header(header: str, warnings: list[ParseWarning],
                       default: str = DEFAULT_CODEC) -> str:
    if len(header) < 4:
        return default
    fields = header.split(header[3])
    if len(fields) <= 17 or not fields[17]:
        return default
    declared = fields[17]
    encoding = fields[1]
    if len(encoding) > 1 and encoding[1] in declared:
        declared = declared.split(encoding[1])[0]
    codec = codec_for(declared)
    if codec is None:
        warnings.append(
            ParseWarning(
                "unknown-charset",
                f"MSH-18 character set {declared.strip()[:40]!r} is not one Switchboard "
                f"knows; decoding as {default}",
                1,
            )
        )
        return default
    return codec


def _parse_text(
    text: str, *, raw: bytes | None, codec: str | None, warnings: list[ParseWarning],
    default: str = DEFAULT_CODEC,
) -> Message:
    body = text.lstrip("\ufeff").lstrip()
    if not body:
        raise ParseError("the message is empty", hint="Send at least an MSH segment")
    if not body.startswith("MSH"):
        raise ParseError(
            "an HL7 v2 message must start with an MSH segment",
            segment_number=1,
            hint="Check that the sender is not adding a batch header (FHS/BHS) or "
            "other text before MSH",
        )
    if len(body) < 5:
        raise ParseError(
            "MSH ends before its field separator (MSH-1) and encoding characters (MSH-2)",
            segment="MSH", segment_number=1,
        )
    field_sep = body[3]
    # One scan each for CR and LF serves both the header and the segment split.
    has_lf = "\n" in body
    end = body.find("\r")
    has_cr = end >= 0
    if not has_cr:
        end = len(body)
    if has_lf:
        lf = body.find("\n", 0, end)
        end = lf if lf >= 0 else end
    header = body[:end]
    enc_end = header.find(field_sep, 4)
    seps = separators_from(field_sep, header[4:enc_end] if enc_end > 0 else header[4:])
    if codec is None:
        # MSH-18 is 17 separators in; most headers stop well before it.
        if header.count(field_sep) >= 17:
            codec = _codec_from_header(header, warnings, default)
        else:
            codec = default
    if has_lf:
        segments = _EOL_SPLIT.split(body) if has_cr else body.split("\n")
    else:
        segments = body.split("\r")
    segments, keys = _checked_segments(segments, body, seps, warnings)
    return Message(seps, segments, keys, codec, raw, text, warnings)


def _checked_segments(
    segments: list[str], body: str, seps: Separators, warnings: list[ParseWarning]
) -> tuple[list[str], list[str]]:
    """The segments and their keys (segment ID plus field separator, e.g. ``PID|``).

    The fast path checks every segment with one C-level set comparison of the keys
    against those already seen valid; anything unusual takes the slow path."""
    if not segments[-1]:
        segments.pop()
    keys = [seg[:4] for seg in segments]
    if _KNOWN_KEYS.issuperset(keys):
        return segments, keys
    segments = _split_segments_slowly(body, seps, warnings)
    return segments, [_key(seg, seps.field) for seg in segments]


def _key(segment: str, field_sep: str) -> str:
    return segment[:3] + field_sep


def _split_segments_slowly(
    body: str, seps: Separators, warnings: list[ParseWarning]
) -> list[str]:
    """Handle what the fast path does not: blank lines, new segment IDs, and line
    breaks inside a segment (common in free-text OBX/NTE from LF-ending systems)."""
    pieces = _EOL_KEEP.split(body)
    segments: list[str] = []
    pending_break = ""
    for pos in range(0, len(pieces), 2):
        seg = pieces[pos]
        line_break = pieces[pos + 1] if pos + 1 < len(pieces) else ""
        if not seg.strip():
            pending_break += seg + line_break
            continue
        if _is_segment_start(seg, seps.field):
            segments.append(seg)
        elif segments:
            warnings.append(
                ParseWarning(
                    "line-break-in-segment",
                    "a line does not start with a segment ID, so it is kept as part of "
                    "the segment before it",
                    len(segments),
                )
            )
            segments[-1] += pending_break + seg
        else:
            raise ParseError(
                "the message does not start with a segment ID", segment_number=1
            )
        pending_break = line_break
    return segments


def _is_segment_start(seg: str, field_sep: str) -> bool:
    if not _SEGMENT_ID.fullmatch(seg[:3]):
        return False
    if len(seg) == 3:
        return True
    if seg[3] != field_sep:
        return False
    if len(_KNOWN_KEYS) < 10_000:
        _KNOWN_KEYS.add(seg[:4])
    return True


class Message:
    """One HL7 v2 message. Fields are split only when read, and the original bytes are
    kept, so an unedited message encodes to exactly what was received."""

    __slots__ = (
        "_edited",
        "_keys",
        "_parts",
        "_raw",
        "_segments",
        "_text",
        "codec",
        "separators",
        "warnings",
    )

    def __init__(
        self,
        separators: Separators,
        segments: list[str],
        keys: list[str],
        codec: str,
        raw: bytes | None,
        text: str,
        warnings: list[ParseWarning],
    ) -> None:
        self.separators = separators
        self.codec = codec
        self.warnings = warnings
        self._raw = raw
        self._text = text
        self._segments = segments
        self._keys = keys
        self._parts: list[list[str] | None] = [None] * len(segments)
        self._edited = False

    # ---- structure -------------------------------------------------------------

    @property
    def segment_ids(self) -> list[str]:
        return [key[:3] for key in self._keys]

    def segment_texts(self) -> list[str]:
        """Every segment as encoded text, in order, without line endings."""
        return list(self._segments)

    def __len__(self) -> int:
        return len(self._segments)

    def __repr__(self) -> str:
        # Type and control id only: everything else may be PHI.
        return (
            f"<Message {self.get_raw('MSH-9') or '?'} "
            f"control_id={self.get('MSH-10')!r} segments={len(self._segments)}>"
        )

    @property
    def message_type(self) -> str:
        """MSH-9.1, e.g. ``ADT``."""
        return self.get("MSH-9.1") or ""

    @property
    def trigger_event(self) -> str:
        """MSH-9.2, e.g. ``A01``."""
        return self.get("MSH-9.2") or ""

    @property
    def control_id(self) -> str:
        """MSH-10."""
        return self.get("MSH-10") or ""

    @property
    def version(self) -> str:
        """MSH-12.1, e.g. ``2.5.1``."""
        return self.get("MSH-12.1") or ""

    def _position(self, segment_id: str, occurrence: int | None) -> int:
        """Index of one occurrence (the first when None) of a segment, or -1."""
        keys = self._keys
        key = segment_id + self.separators.field
        try:
            pos = keys.index(key)
            for _ in range(1, occurrence or 1):
                pos = keys.index(key, pos + 1)
        except ValueError:
            return -1
        return pos

    def _fields(self, pos: int) -> list[str]:
        parts = self._parts[pos]
        if parts is None:
            seg = self._segments[pos]
            fs = self.separators.field
            parts = seg.split(fs)
            if parts[0] in _HEADERS:
                # HL7 counts the field separator itself as MSH-1.
                parts.insert(1, fs)
            self._parts[pos] = parts
        return parts

    def _segment_positions(self, path: Path) -> list[int]:
        if path.occurrence == ALL:
            key = path.segment + self.separators.field
            return [pos for pos, other in enumerate(self._keys) if other == key]
        pos = self._position(path.segment, path.occurrence)
        return [] if pos < 0 else [pos]

    # ---- reading ---------------------------------------------------------------

    def get(self, path: str) -> str | None:
        """The unescaped value at ``path``: its first primitive when the position holds
        a composite, ``''`` when it is empty, ``None`` when it is absent."""
        # The cache probe is inlined because get is the hottest call in Switchboard.
        p = (_PATHS.get(path) if type(path) is str else None) or parse_path(path)
        if p.occurrence == ALL or p.repetition == ALL or p.field is None:
            _require_single(p, "get")
        value = self._raw_at(p)
        return None if value is None else self._primitive(value, p)

    def get_all(self, path: str, *, raw: bool = False) -> list[str]:
        """Every value at ``path``: ``[*]`` expands segments or repetitions, and an
        omitted repetition means every repetition. Absent positions contribute nothing."""
        p = parse_path(path)
        if p.field is None:
            if not raw:
                raise PathError(f"{path}: name a field, or ask for raw segments with raw=True")
            return [self._segments[pos] for pos in self._segment_positions(p)]
        values: list[str] = []
        every_rep = p.repetition is None or p.repetition == ALL
        for pos in self._segment_positions(p):
            fields = self._fields(pos)
            if p.field >= len(fields):
                continue
            for rep in self._repetitions(fields[p.field], p, every_rep):
                value = self._within(rep, p)
                if value is None:
                    continue
                values.append(value if raw else self._primitive(value, p))
        return values

    def get_raw(self, path: str) -> str | None:
        """The encoded text at ``path``, separators and escapes included. A segment
        path gives the whole segment; ``PID-3[*]`` gives the field with every
        repetition."""
        p = parse_path(path)
        if p.occurrence == ALL:
            raise PathError(f"{path}: get_raw reads one position; use get_all(path, raw=True)")
        positions = self._segment_positions(p)
        if not positions:
            return None
        if p.field is None:
            return self._segments[positions[0]]
        if p.repetition == ALL:
            fields = self._fields(positions[0])
            return fields[p.field] if p.field < len(fields) else None
        return self._raw_at(p)

    def is_null(self, path: str) -> bool:
        """True when the position holds the HL7 explicit null ``""`` (delete the value
        at the receiver), as opposed to being empty or absent."""
        p = parse_path(path)
        _require_single(p, "is_null")
        return self._raw_at(p) == '""'

    def _raw_at(self, p: Path) -> str | None:
        """The raw text of the single position ``p`` names, or None when absent."""
        field = p.field
        if field is None:
            return None
        if p.occurrence is None:
            # _position inlined for the common case: this is under every get().
            try:
                pos = self._keys.index(p.segment + self.separators.field)
            except ValueError:
                return None
        else:
            pos = self._position(p.segment, p.occurrence)
            if pos < 0:
                return None
        fields = self._parts[pos] or self._fields(pos)
        if field >= len(fields):
            return None
        value = fields[field]
        if field <= 2 and p.segment in _HEADERS:
            deeper = (p.repetition or 1, p.component or 1, p.subcomponent or 1)
            return value if deeper == (1, 1, 1) else None
        rep_sep = self.separators.repetition
        if rep_sep and rep_sep in value:
            reps = value.split(rep_sep)
            rep = p.repetition or 1
            if rep > len(reps):
                return None
            value = reps[rep - 1]
        elif p.repetition is not None and p.repetition > 1:
            return None
        return value if p.component is None else self._within(value, p)

    def _repetitions(self, value: str, p: Path, every: bool) -> list[str]:
        if p.field is not None and p.field <= 2 and p.segment in _HEADERS:
            return [value] if every or p.repetition == 1 else []
        rep_sep = self.separators.repetition
        reps = value.split(rep_sep) if rep_sep else [value]
        if every:
            return reps
        rep = p.repetition or 1
        return reps[rep - 1 : rep]

    def _within(self, value: str, p: Path) -> str | None:
        """Descend from one repetition to the component and subcomponent of ``p``."""
        if p.component is None:
            return value
        seps = self.separators
        comps = value.split(seps.component) if seps.component else [value]
        if p.component > len(comps):
            return None
        value = comps[p.component - 1]
        if p.subcomponent is None:
            return value
        subs = value.split(seps.subcomponent) if seps.subcomponent else [value]
        if p.subcomponent > len(subs):
            return None
        return subs[p.subcomponent - 1]

    def _primitive(self, value: str, p: Path) -> str:
        """The unescaped first primitive of a raw position (``""`` reads as empty)."""
        if p.field is not None and p.field <= 2 and p.segment in _HEADERS:
            return value
        seps = self.separators
        if p.subcomponent is None:
            # find + slice: this runs for nearly every read, and split builds a list.
            if p.component is None and seps.component:
                cut = value.find(seps.component)
                if cut >= 0:
                    value = value[:cut]
            if seps.subcomponent:
                cut = value.find(seps.subcomponent)
                if cut >= 0:
                    value = value[:cut]
        if value == '""':
            return ""
        if seps.escape and seps.escape in value:
            return unescape(value, seps, self.codec)
        return value

    # ---- editing ---------------------------------------------------------------

    def set(self, path: str, value: str) -> None:
        """Write ``value`` (escaped) where ``get(path)`` reads: into the first primitive
        when ``path`` names a composite, so its other components are kept."""
        p = parse_path(path)
        pos, _ = self._editable_position(p, "set")
        if not isinstance(value, str):
            raise EditError(f"{p}: a value must be a string, not {type(value).__name__}")
        if value == "" and self._raw_at(p) is None:
            return
        self._write(pos, p, self._escape(value, p), primitive=True)

    def set_raw(self, path: str, encoded: str) -> None:
        """Replace the position with already-encoded text; ``PID-3[*]`` replaces the
        whole field. The text may only hold delimiters below the position's level."""
        p = parse_path(path)
        pos, _ = self._editable_position(p, "set_raw")
        self._check_encoded(p, encoded)
        self._write(pos, p, encoded, primitive=False)

    def insert_repetition(self, path: str, value: str, *, raw: bool = False) -> None:
        """Insert a repetition so that it becomes ``path``'s repetition (``PID-3[2]``
        inserts before the current second one; one past the end appends)."""
        p = parse_path(path)
        pos, field = self._editable_position(p, "insert_repetition")
        rep = _named_repetition(p, "insert")
        encoded = value if raw else self._escape(value, p)
        if raw:
            self._check_encoded(p, encoded)
        fields = self._padded_fields(pos, field)
        reps = self._split_reps(fields[field]) if fields[field] else []
        if rep > len(reps) + 1:
            raise EditError(f"{p}: the field has only {len(reps)} repetitions")
        reps.insert(rep - 1, encoded)
        fields[field] = self.separators.repetition.join(reps)
        self._touch(pos)

    def remove_repetition(self, path: str) -> None:
        """Remove one repetition; the field becomes empty when it was the only one."""
        p = parse_path(path)
        pos, field = self._editable_position(p, "remove_repetition")
        rep = _named_repetition(p, "remove")
        fields = self._fields(pos)
        if field >= len(fields):
            raise EditError(f"{p}: the field is absent")
        reps = self._split_reps(fields[field])
        if rep > len(reps):
            raise EditError(f"{p}: the field has only {len(reps)} repetitions")
        del reps[rep - 1]
        fields[field] = self.separators.repetition.join(reps)
        self._touch(pos)

    def insert_segment(
        self, segment: str, *, before: str | None = None, after: str | None = None
    ) -> None:
        """Insert an encoded segment before or after the segment a path names, or
        append it when neither is given."""
        self._check_segment(segment)
        if before is not None and after is not None:
            raise EditError("give either before or after, not both")
        if before is not None:
            at = self._segment_position(before)
            if at == 0:
                raise EditError("nothing can come before MSH", segment="MSH")
        elif after is not None:
            at = self._segment_position(after) + 1
        else:
            at = len(self._segments)
        self._segments.insert(at, segment)
        self._keys.insert(at, _key(segment, self.separators.field))
        self._parts.insert(at, None)
        self._edited = True

    def replace_segment(self, path: str, segment: str) -> None:
        """Replace the segment ``path`` names with an encoded segment."""
        pos = self._segment_position(path)
        self._refuse_header(pos, "replaced")
        self._check_segment(segment)
        self._segments[pos] = segment
        self._keys[pos] = _key(segment, self.separators.field)
        self._parts[pos] = None
        self._edited = True

    def remove_segment(self, path: str) -> None:
        """Remove the segment ``path`` names."""
        pos = self._segment_position(path)
        self._refuse_header(pos, "removed")
        del self._segments[pos]
        del self._keys[pos]
        del self._parts[pos]
        self._edited = True

    def _segment_position(self, path: str) -> int:
        p = parse_path(path)
        if p.field is not None or p.occurrence == ALL:
            raise PathError(f"{path}: name one segment, e.g. OBX[2]")
        positions = self._segment_positions(p)
        if not positions:
            raise EditError(f"{path}: the message has no such segment", segment=p.segment)
        return positions[0]

    def _refuse_header(self, pos: int, verb: str) -> None:
        if pos == 0:
            raise EditError(
                f"MSH cannot be {verb}: it declares the separators",
                segment="MSH", segment_number=1,
                hint="Edit its fields with set()",
            )

    def _check_segment(self, segment: str) -> None:
        if not isinstance(segment, str) or "\r" in segment or "\n" in segment:
            raise EditError("a segment is one line of encoded text, without line breaks")
        if not _is_segment_start(segment, self.separators.field):
            raise EditError(
                "a segment must start with a three-character segment ID followed by "
                f"the field separator {self.separators.field!r}"
            )
        if segment[:3] in _HEADERS:
            raise EditError(f"a message has one header; {segment[:3]} cannot be added")

    def _editable_position(self, p: Path, verb: str) -> tuple[int, int]:
        """The segment index and field number ``p`` names, if it may be edited."""
        if p.has_wildcard and not (verb == "set_raw" and p.repetition == ALL
                                   and p.occurrence != ALL and p.component is None):
            raise PathError(f"{p}: {verb} writes one position; [*] is not allowed here")
        if p.field is None:
            raise PathError(f"{p}: name a field, e.g. {p.segment}-1")
        if p.segment in _HEADERS and p.field <= 2:
            raise EditError(
                f"{p.segment}-{p.field} declares the separators and cannot be edited",
                segment=p.segment, field=p.field,
            )
        pos = self._position(p.segment, p.occurrence)
        if pos < 0:
            raise EditError(
                f"the message has no {p.segment} segment to write {p} into",
                segment=p.segment,
                hint=f"Add it first with insert_segment('{p.segment}{self.separators.field}')",
            )
        return pos, p.field

    def _escape(self, value: str, p: Path) -> str:
        seps = self.separators
        if not seps.escape and any(ch in value for ch in seps.delimiters + "\r\n"):
            raise EditError(
                f"{p}: the value holds a delimiter and MSH-2 declares no escape character",
                segment=p.segment, field=p.field,
            )
        return escape(value, seps)

    def _check_encoded(self, p: Path, encoded: str) -> None:
        seps = self.separators
        forbidden = seps.field + "\r\n"
        if p.repetition != ALL:
            forbidden += seps.repetition
            if p.component is not None:
                forbidden += seps.component
                if p.subcomponent is not None:
                    forbidden += seps.subcomponent
        if not isinstance(encoded, str) or any(ch in encoded for ch in forbidden if ch):
            raise EditError(
                f"{p}: encoded text for this position may not contain {forbidden!r}",
                segment=p.segment, field=p.field,
            )

    def _padded_fields(self, pos: int, field: int) -> list[str]:
        fields = self._fields(pos)
        if len(fields) <= field:
            fields.extend([""] * (field + 1 - len(fields)))
        return fields

    def _split_reps(self, value: str) -> list[str]:
        rep_sep = self.separators.repetition
        return value.split(rep_sep) if rep_sep else [value]

    def _write(self, pos: int, p: Path, text: str, *, primitive: bool) -> None:
        seps = self.separators
        field = p.field or 0
        fields = self._padded_fields(pos, field)
        if p.repetition == ALL:
            fields[field] = text
            self._touch(pos)
            return
        reps = self._split_reps(fields[field])
        rep = p.repetition or 1
        if rep > 1 and not seps.repetition:
            raise EditError(f"{p}: MSH-2 declares no repetition separator")
        reps.extend([""] * (rep - len(reps)))
        reps[rep - 1] = _replace_within(reps[rep - 1], p, text, seps, primitive)
        fields[field] = seps.repetition.join(reps)
        self._touch(pos)

    def _touch(self, pos: int) -> None:
        parts = self._parts[pos]
        assert parts is not None
        fs = self.separators.field
        if parts[0] in _HEADERS:
            self._segments[pos] = parts[0] + fs + fs.join(parts[2:])
        else:
            self._segments[pos] = fs.join(parts)
        self._edited = True

    # ---- encoding --------------------------------------------------------------

    @property
    def edited(self) -> bool:
        return self._edited

    def encode(self) -> bytes:
        """The message as bytes: exactly the original bytes when nothing was edited.

        After an edit, segments are joined with the line ending the original used
        first (CR for standard HL7), and a leading BOM and a final line ending are
        kept if the original had them."""
        if not self._edited and self._raw is not None:
            return self._raw
        text = self.to_text()
        if self._raw is not None and self._raw.startswith(_BOM):
            text = "\ufeff" + text
        try:
            return text.encode(self.codec, "surrogateescape")
        except UnicodeEncodeError as exc:
            raise EditError(
                f"a value holds a character that MSH-18's character set ({self.codec}) "
                "cannot represent",
                hint="Declare a wider character set in MSH-18, such as UNICODE UTF-8",
            ) from exc

    def to_text(self) -> str:
        """The message as text (for edited messages, see :meth:`encode`)."""
        original = self._text
        if not self._edited:
            return original
        found = _EOL_KEEP.search(original)
        eol = found.group(1) if found else "\r"
        prefix = "\ufeff" if original.startswith("\ufeff") else ""
        trailing = eol if original.rstrip(" \t").endswith(("\r", "\n")) else ""
        return prefix + eol.join(self._segments) + trailing

def _replace_within(
    rep: str, p: Path, text: str, seps: Separators, primitive: bool
) -> str:
    if p.component is None:
        if not primitive:
            return text
        return _replace_first(rep, text, seps.component, seps.subcomponent)
    if not seps.component:
        raise EditError(f"{p}: MSH-2 declares no component separator")
    comps = rep.split(seps.component)
    comps.extend([""] * (p.component - len(comps)))
    comp = comps[p.component - 1]
    if p.subcomponent is None:
        comps[p.component - 1] = (
            _replace_first(comp, text, "", seps.subcomponent) if primitive else text
        )
    else:
        if not seps.subcomponent:
            raise EditError(f"{p}: MSH-2 declares no subcomponent separator")
        subs = comp.split(seps.subcomponent)
        subs.extend([""] * (p.subcomponent - len(subs)))
        subs[p.subcomponent - 1] = text
        comps[p.component - 1] = seps.subcomponent.join(subs)
    return seps.component.join(comps)


def _replace_first(value: str, text: str, comp_sep: str, sub_sep: str) -> str:
    """Replace the first primitive of ``value`` with ``text``, keeping the rest."""
    comps = value.split(comp_sep) if comp_sep else [value]
    subs = comps[0].split(sub_sep) if sub_sep else [comps[0]]
    subs[0] = text
    comps[0] = sub_sep.join(subs)
    return comp_sep.join(comps)


def _named_repetition(p: Path, verb: str) -> int:
    if p.repetition is None or p.repetition == ALL or p.component is not None:
        raise PathError(f"{p}: name the repetition to {verb}, e.g. PID-3[2]")
    return p.repetition


def _require_single(p: Path, verb: str) -> None:
    if p.has_wildcard:
        raise PathError(f"{p}: {verb} reads one position; use get_all for [*]")
    if p.field is None:
        raise PathError(f"{p}: name a field, e.g. {p.segment}-1")
