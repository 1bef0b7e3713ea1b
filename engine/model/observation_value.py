"""OBX-5 read by its data type (OBX-2) into the canonical result value.

One shape for every type, whose keys say what the value holds, so routes, tasks and
encoders read a number, a code or a time without knowing HL7 v2 data types::

    type         OBX-2 as sent (NM, SN, ST, CWE...); absent when OBX-2 is empty
    number       NM; SN with one number, ``comparator`` beside it (<, >, <=, >=, =, <>)
    low, high    SN range (``^10^-^20``)
    numerator, denominator   SN ratio (``^1^:^128``, ``^1^/^3``)
    text         ST, TX, FT (repetitions as lines), HD and FN (components joined by a
                 space), an SN that is neither (``2+``), a coded value's original
                 text (CWE-9), or a value that is not what its type says
    code         CWE, CE, CNE, CF: {code, display, system}; system is the coding
                 system (CWE-3), left out when it holds text with spaces instead
    datetime     DT, DTM, TS: ISO 8601 at the precision sent, offset kept
    attachment   RP: {pointer, application, data_type, subtype}; ED: {application,
                 data_type, subtype, encoding, data_at}. An ED's content is never
                 copied: ``data_at`` is where it is in the original message.
    repetitions  a repeating OBX-5 (other than ST, TX, FT): each repetition's value
                 (without ``type``), the first of them also the value's own keys

Values that do not fit their type are kept as text with a problem, which the mapper
turns into an issue naming the HL7 path (never the value).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from engine.model.coding_system import NOT_A_CODING_SYSTEM, is_coding_system
from engine.model.hl7_time import TimeFormatError, hl7_to_iso

Value = dict[str, Any]
Decoded = tuple[Value | None, list[str]]

# SN-1 comparators, and the SN-3 separators or suffixes that the structured keys do
# not carry (``2+``, ``1.5``): those are kept as text, which is what they say.
COMPARATORS = frozenset({">", "<", ">=", "<=", "=", "<>"})
_TEXT_SEPARATORS = frozenset({"+", "."})
_RATIO_SEPARATORS = frozenset({":", "/"})

NOT_A_NUMBER = "not a number; kept as text"
NOT_SN = "not a structured numeric (SN) value; kept as text"
NOT_A_TIME = "not a valid HL7 date/time; kept as text"


class Field(Protocol):
    """One field of one segment, read through the HL7 v2 toolkit (unescaped)."""

    path: str  # the field's concrete HL7 path: OBX[3]-5

    def repetitions(self) -> int: ...

    def component(self, repetition: int, component: int) -> str:
        """'' when the position is empty or absent."""


def parse_number(text: str) -> int | float | None:
    """An NM as a JSON number (an int when it has no decimal point), or None. "NaN"
    and "inf" parse as floats, but JSON has no such numbers: they are not numbers."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and "." not in text else number


def observation_value(type_code: str, field: Field) -> Decoded:
    """The canonical value of ``field`` read as ``type_code``; None when it is empty."""
    count = field.repetitions()
    if count == 0:
        return None, []
    if type_code in _TEXT_TYPES:
        lines = [field.component(n, 1) for n in range(1, count + 1)]
        return (_typed(type_code, text="\n".join(lines)) if any(lines) else None), []
    decode = _DECODERS.get(type_code, _plain)
    value, problems = decode(type_code, _repetition(field, 1), field)
    if not any(field.component(n, c) for n in range(2, count + 1) for c in range(1, 10)):
        return value, problems
    # A repeating value is one value per repetition (the v2-to-FHIR IG's
    # OBX[Observation-Component]); the first stays the value's own, for routes.
    repeated: list[Value] = []
    for number in range(1, count + 1):
        found, more = decode(type_code, _repetition(field, number), field)
        problems.extend(problem for problem in more if problem not in problems)
        if found is not None:
            found.pop("type", None)
            repeated.append(found)
    if len(repeated) < 2:
        return value, problems
    return {**(value or _typed(type_code)), "repetitions": repeated}, problems


Read = Callable[[int], str]


def _repetition(field: Field, number: int) -> Read:
    return lambda component: field.component(number, component)


def _typed(type_code: str, **parts: Any) -> Value:
    value = {"type": type_code} if type_code else {}
    value.update((key, part) for key, part in parts.items() if part not in (None, "", {}))
    return value


def _plain(type_code: str, read: Read, field: Field) -> Decoded:
    """A type without a shape of its own: its first component, as text."""
    text = read(1)
    return (_typed(type_code, text=text) if text else None), []


def _numeric(type_code: str, read: Read, field: Field) -> Decoded:
    text = read(1)
    if not text:
        return None, []
    number = parse_number(text)
    if number is None:
        return _typed(type_code, text=text), [NOT_A_NUMBER]
    return _typed(type_code, number=number), []


def _structured_numeric(type_code: str, read: Read, field: Field) -> Decoded:
    comparator, first, separator, second = (read(n).strip() for n in range(1, 5))
    if not (comparator or first or separator or second):
        return None, []
    one, two = parse_number(first), parse_number(second)
    numbers_fit = (one is not None or not first) and (two is not None or not second)
    if comparator in COMPARATORS and one is not None and not (separator or second):
        return _typed(type_code, comparator=comparator, number=one), []
    if comparator or not numbers_fit or (one, two) == (None, None):
        return _typed(type_code, text=comparator + first + separator + second), [NOT_SN]
    if not (separator or second):
        return _typed(type_code, number=one), []
    if separator == "-":
        return _typed(type_code, low=one, high=two), []  # an end may be open
    if separator in _RATIO_SEPARATORS and one is not None and two is not None:
        return _typed(type_code, numerator=one, denominator=two), []
    if separator in _TEXT_SEPARATORS and one is not None:
        return _typed(type_code, text=first + separator + second), []
    return _typed(type_code, text=first + separator + second), [NOT_SN]


def _coded(type_code: str, read: Read, field: Field) -> Decoded:
    code = {key: read(n) for key, n in (("code", 1), ("display", 2), ("system", 3))
            if read(n)}
    problems = []
    if "system" in code and not is_coding_system(code["system"]):
        del code["system"]
        problems.append(f"its coding system ({type_code or 'CWE'}-3) is {NOT_A_CODING_SYSTEM}")
    if not code and not read(9):
        return None, problems
    return _typed(type_code, code=code, text=read(9)), problems


def _time(type_code: str, read: Read, field: Field) -> Decoded:
    text = read(1).strip()
    if not text:
        return None, []
    try:
        return _typed(type_code, datetime=hl7_to_iso(text)), []
    except TimeFormatError:
        return _typed(type_code, text=text), [NOT_A_TIME]


def _joined(size: int) -> Callable[[str, Read, Field], Decoded]:
    """A composite read as one string: its non-empty components, space separated."""

    def decode(type_code: str, read: Read, field: Field) -> Decoded:
        text = " ".join(part for part in (read(n) for n in range(1, size + 1)) if part)
        return (_typed(type_code, text=text) if text else None), []

    return decode


def _reference(type_code: str, read: Read, field: Field) -> Decoded:
    attachment = _parts(read, ("pointer", "application", "data_type", "subtype"))
    return (_typed(type_code, attachment=attachment) if attachment else None), []


def _encapsulated(type_code: str, read: Read, field: Field) -> Decoded:
    attachment = _parts(read, ("application", "data_type", "subtype", "encoding"))
    if read(5):
        # The content (often megabytes of Base64) stays in the journaled message.
        attachment["data_at"] = f"{field.path}.5"
    return (_typed(type_code, attachment=attachment) if attachment else None), []


def _parts(read: Read, names: tuple[str, ...]) -> dict[str, str]:
    return {name: read(n) for n, name in enumerate(names, start=1) if read(n)}


_TEXT_TYPES = frozenset({"ST", "TX", "FT"})
_DECODERS: dict[str, Callable[[str, Read, Field], Decoded]] = {
    "NM": _numeric,
    "SN": _structured_numeric,
    "CWE": _coded, "CE": _coded, "CNE": _coded, "CF": _coded,
    "DT": _time, "DTM": _time, "TS": _time,
    "HD": _joined(3),
    "FN": _joined(5),
    "RP": _reference,
    "ED": _encapsulated,
}
