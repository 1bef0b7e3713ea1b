"""HL7 v2 acknowledgements (chapter 2.9), original and enhanced mode.

Original mode (MSH-15 and MSH-16 both empty): one ACK, ``AA``, ``AE`` or ``AR``.
Enhanced mode (either is valued): an accept (commit) ACK ``CA``, ``CE`` or ``CR`` sent
when MSH-15 asks for it, and later an application ACK ``AA``, ``AE`` or ``AR`` as its
own message when MSH-16 asks for it. Table 0155 decides: ``AL`` always, ``NE`` never,
``ER`` only on error or reject, ``SU`` only on success; an empty field in enhanced mode
means ``AL``.

The ERR segment follows the acknowledged message's version: ERR-1 (ELD) up to v2.4;
ERR-2 (location), ERR-3 (table 0357 code) and ERR-4 (severity) from v2.5 on.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from engine.errors import HeaderError, ParseError, SwitchboardError
from engine.hl7v2.escape import escape
from engine.hl7v2.message import Message, header_codec, parse, read_header
from engine.hl7v2.separators import Separators

TABLE_0357 = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    104: "Value too long",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}

ORIGINAL_CODES = frozenset({"AA", "AE", "AR"})
ACCEPT_CODES = frozenset({"CA", "CE", "CR"})
_SUCCESS = frozenset({"AA", "CA"})
DEFAULT_VERSION = "2.5.1"
CONTROL_ID_LENGTH = 20
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class AckError:
    """What went wrong, for the ERR segment. ``text`` must not contain PHI."""

    code: int = 207
    text: str = ""
    segment: str | None = None
    sequence: int | None = None
    field: int | None = None
    repetition: int | None = None
    component: int | None = None
    subcomponent: int | None = None
    severity: str = "E"

    @classmethod
    def from_error(cls, error: SwitchboardError, code: int | None = None) -> AckError:
        """An AckError locating ``error``; parse problems default to code 102."""
        sequence = error.occurrence or (1 if error.segment == "MSH" else None)
        if code is None:
            code = (error.ack_code if isinstance(error, HeaderError)
                    else 102 if isinstance(error, ParseError) else 207)
        return cls(
            code=code,
            text=error.reason,
            segment=error.segment,
            sequence=sequence,
            field=error.field,
            component=error.component,
        )


@dataclass(frozen=True)
class AckModes:
    """How the sender wants to be acknowledged, from MSH-15 and MSH-16."""

    enhanced: bool
    accept: str
    application: str

    def wants_accept_ack(self, code: str) -> bool:
        return _condition_holds(self.accept, code)

    def wants_application_ack(self, code: str) -> bool:
        return _condition_holds(self.application, code)


def _condition_holds(condition: str, code: str) -> bool:
    condition = condition.upper() or "AL"
    if condition == "NE":
        return False
    if condition == "ER":
        return code not in _SUCCESS
    if condition == "SU":
        return code in _SUCCESS
    return True


def ack_modes(message: Message) -> AckModes:
    accept = (message.get("MSH-15") or "").strip()
    application = (message.get("MSH-16") or "").strip()
    return AckModes(bool(accept or application), accept, application)


def original_ack(
    message: Message, code: str = "AA", error: AckError | None = None, **options: str
) -> Message:
    """The original-mode ACK (``AA``, ``AE`` or ``AR``) for ``message``."""
    _check_code(code, ORIGINAL_CODES)
    return build_ack(message, code, error, enhanced=False, **options)


def accept_ack(
    message: Message, code: str = "CA", error: AckError | None = None, **options: str
) -> Message | None:
    """The enhanced-mode accept ACK, or None when MSH-15 says not to send one."""
    _check_code(code, ACCEPT_CODES)
    if not ack_modes(message).wants_accept_ack(code):
        return None
    return build_ack(message, code, error, enhanced=True, **options)


def application_ack(
    message: Message, code: str = "AA", error: AckError | None = None, **options: str
) -> Message | None:
    """The enhanced-mode application ACK, sent later as its own message, or None when
    MSH-16 says not to send one."""
    _check_code(code, ORIGINAL_CODES)
    if not ack_modes(message).wants_application_ack(code):
        return None
    return build_ack(message, code, error, enhanced=True, **options)


def reject(
    data: bytes | str, error: SwitchboardError, code: str = "AR"
) -> Message | None:
    """An ACK for input that could not be parsed or accepted: ``code`` (AR or AE) in
    original mode, CR or CE in enhanced mode (None when MSH-15 says not to send one).
    It is addressed from the input's MSH when that can still be read, otherwise from
    Switchboard's defaults with an empty MSA-2."""
    _check_code(code, frozenset({"AR", "AE"}))
    try:
        header = read_header(data)
    except SwitchboardError:
        header = parse(f"MSH|^~\\&|||SWITCHBOARD||||||P|{DEFAULT_VERSION}")
    modes = ack_modes(header)
    if modes.enhanced:
        code = "CR" if code == "AR" else "CE"
        if not modes.wants_accept_ack(code):
            return None
    return build_ack(header, code, AckError.from_error(error), enhanced=modes.enhanced)


def original_ack_bytes(
    message: Message, code: str = "AA", error: AckError | None = None, **options: str
) -> bytes:
    """``original_ack(...).encode()``, without building the ACK as a message: ingest
    answers every message received with one."""
    _check_code(code, ORIGINAL_CODES)
    return _encoded(build_ack_text(message, code, error, enhanced=False, **options))


def accept_ack_bytes(
    message: Message, code: str = "CA", error: AckError | None = None, **options: str
) -> bytes | None:
    """``accept_ack(...).encode()`` (None when MSH-15 says not to send one), without
    building the ACK as a message."""
    _check_code(code, ACCEPT_CODES)
    if not ack_modes(message).wants_accept_ack(code):
        return None
    return _encoded(build_ack_text(message, code, error, enhanced=True, **options))


def _encoded(text: str) -> bytes:
    # What parse(text).encode() gives: the text in the character set its MSH-18 names.
    return text.encode(header_codec(text[:text.find("\r")]), "surrogateescape")


def build_ack(message: Message, code: str, error: AckError | None = None, *,
              enhanced: bool, **options: str | None) -> Message:
    """Assemble an ACK for ``message``: MSH addressed back to its sender, MSA echoing
    MSH-10, and an ERR when there is an error."""
    return parse(build_ack_text(message, code, error, enhanced=enhanced, **options))


def build_ack_text(
    message: Message,
    code: str,
    error: AckError | None = None,
    *,
    enhanced: bool,
    sending_application: str | None = None,
    sending_facility: str | None = None,
    control_id: str | None = None,
    timestamp: str | None = None,
) -> str:
    """An ACK's text (see :func:`build_ack`)."""
    seps = message.separators
    fs = seps.field
    version = message.get_raw("MSH-12") or DEFAULT_VERSION
    version_number = _version_tuple(message.version or DEFAULT_VERSION)
    new_id = control_id or new_control_id()
    if len(new_id) > CONTROL_ID_LENGTH:
        raise SwitchboardError(f"MSH-10 may hold at most {CONTROL_ID_LENGTH} characters")
    msh = [
        "MSH",
        seps.encoding_characters,
        _escaped(sending_application, seps) or message.get_raw("MSH-5") or "",
        _escaped(sending_facility, seps) or message.get_raw("MSH-6") or "",
        message.get_raw("MSH-3") or "",
        message.get_raw("MSH-4") or "",
        timestamp or hl7_timestamp(),
        "",
        _ack_type(message, version_number, seps),
        new_id,
        message.get_raw("MSH-11") or "P",
        version,
        "",
        "",
        "NE" if enhanced else "",
        "NE" if enhanced else "",
        "",
        message.get_raw("MSH-18") or "",
    ]
    old = version_number < (2, 5)
    text = escape(error.text, seps) if error and error.text else ""
    msa = ["MSA", code, message.get_raw("MSH-10") or "", text if old else ""]
    segments = [fs.join(msh).rstrip(fs), fs.join(msa).rstrip(fs)]
    if error is not None:
        segments.append(_err_segment(error, seps, old=old))
    return "\r".join(segments) + "\r"


def _ack_type(message: Message, version: tuple[int, ...], seps: Separators) -> str:
    event = message.get_raw("MSH-9.2") or ""
    if not event:
        return "ACK"
    parts = ["ACK", event]
    if version >= (2, 3, 1):
        parts.append("ACK")
    return seps.component.join(parts)


def _err_segment(error: AckError, seps: Separators, *, old: bool) -> str:
    cs, ss, fs = seps.component, seps.subcomponent, seps.field
    label = TABLE_0357.get(error.code, "Application internal error")
    if old:
        code = ss.join([str(error.code), label, "HL70357"])
        eld = [error.segment or "", _num(error.sequence), _num(error.field), code]
        return fs.join(["ERR", cs.join(eld)])
    location = [
        error.segment or "",
        _num(error.sequence),
        _num(error.field),
        _num(error.repetition),
        _num(error.component),
        _num(error.subcomponent),
    ]
    fields = [
        "ERR",
        "",
        cs.join(location).rstrip(cs),
        cs.join([str(error.code), label, "HL70357"]),
        error.severity,
        "",
        "",
        "",
        escape(error.text, seps),
    ]
    return fs.join(fields).rstrip(fs)


def _num(value: int | None) -> str:
    return "" if value is None else str(value)


def _escaped(value: str | None, seps: Separators) -> str | None:
    return None if value is None else escape(value, seps)


def _version_tuple(version: str) -> tuple[int, ...]:
    numbers = []
    for part in version.split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers) or (2, 5, 1)


def _check_code(code: str, allowed: frozenset[str]) -> None:
    if code not in allowed:
        raise SwitchboardError(
            f"acknowledgement code {code!r} is not one of {', '.join(sorted(allowed))}"
        )


def new_control_id() -> str:
    """A unique MSH-10 of exactly 20 characters: milliseconds since the epoch in base
    36 (sortable), then random base 36 so that processes never collide."""
    millis = _base36(time.time_ns() // 1_000_000).rjust(9, "0")
    random_digits = CONTROL_ID_LENGTH - 9
    random_part = _base36(secrets.randbelow(36**random_digits)).rjust(random_digits, "0")
    return millis + random_part


def _base36(number: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_BASE36[rest])
    return "".join(reversed(digits)) or "0"


def hl7_timestamp(now: datetime | None = None) -> str:
    """``YYYYMMDDHHMMSS.FFFF+ZZZZ``: local time with its UTC offset, as TS/DTM allow."""
    global _SECOND
    if now is None:
        # Every ACK carries one: the seconds and the zone are formatted once a second
        # (an offset changes only on a whole second), only the fraction each time.
        second, nanos = divmod(time.time_ns(), 1_000_000_000)
        cached = _SECOND  # one tuple, replaced whole: safe across threads
        if cached[0] != second:
            moment = datetime.fromtimestamp(second).astimezone()
            cached = _SECOND = (second, moment.strftime("%Y%m%d%H%M%S"),
                                moment.strftime("%z"))
        return f"{cached[1]}.{nanos // 100_000:04d}{cached[2]}"
    moment = now
    if moment.tzinfo is None:
        moment = moment.astimezone()
    fraction = f"{moment.microsecond // 100:04d}"
    return moment.strftime("%Y%m%d%H%M%S") + "." + fraction + moment.strftime("%z")


_SECOND: tuple[int | None, str, str] = (None, "", "")
