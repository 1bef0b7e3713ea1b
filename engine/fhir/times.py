"""Times between the canonical record and FHIR R4.

Canonical times keep the precision and offset they were sent with (``1989-08-18T11:26
+02:15``, ``2005-01-10T04:52:53``). FHIR is stricter: a dateTime with a time needs
seconds and an offset, an instant needs both and a full date, and a date has no time.
A canonical time that FHIR cannot hold at its precision is sent as its date, never
given an offset it did not have.
"""

from __future__ import annotations

import re

_CANONICAL = re.compile(
    r"(?P<date>\d{4}(?:-\d{2}(?:-\d{2})?)?)"
    r"(?:T(?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?)?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})?)?"
)
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def fhir_date(value: object) -> str | None:
    """A FHIR date (birthDate): the date part of a canonical time."""
    match = _parse(value)
    return match.group("date") if match else None


def fhir_datetime(value: object) -> str | None:
    """A FHIR dateTime: a time with an offset, to the second; otherwise the date."""
    match = _parse(value)
    if match is None:
        return None
    if match.group("hour") is None or match.group("offset") is None:
        return match.group("date")
    return _with_time(match)


def fhir_instant(value: object) -> str | None:
    """A FHIR instant, or None when the canonical time has no full date, time and offset."""
    match = _parse(value)
    if (match is None or match.group("hour") is None or match.group("offset") is None
            or not _FULL_DATE.fullmatch(match.group("date"))):
        return None
    return _with_time(match)


def canonical_time(value: object) -> str | None:
    """A FHIR date, dateTime or instant as a canonical time: ``Z`` written as
    ``+00:00`` and fractions cut to microseconds, as the canonical schema wants."""
    match = _parse(value)
    if match is None:
        return None
    text = match.group("date")
    if match.group("hour") is not None:
        text += f"T{match.group('hour')}"
        if match.group("minute") is not None:
            text += f":{match.group('minute')}"
            if match.group("second") is not None:
                text += f":{match.group('second')}{(match.group('fraction') or '')[:7]}"
        offset = match.group("offset")
        text += "+00:00" if offset == "Z" else (offset or "")
    return text


def _parse(value: object) -> re.Match[str] | None:
    return _CANONICAL.fullmatch(value) if isinstance(value, str) else None


def _with_time(match: re.Match[str]) -> str:
    offset = match.group("offset")
    return (f"{match.group('date')}T{match.group('hour')}:{match.group('minute') or '00'}"
            f":{match.group('second') or '00'}{match.group('fraction') or ''}"
            f"{'+00:00' if offset == 'Z' else offset}")
