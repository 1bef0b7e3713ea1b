"""HL7 v2 date/time (DT, DTM, TS) to ISO 8601, keeping the precision and the UTC offset
exactly as sent: a time without an offset stays without one, never silently UTC."""

from __future__ import annotations

import re
from datetime import date, datetime

from engine.errors import SwitchboardError

_DTM = re.compile(
    r"(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,6}))?(?P<offset>[+-]\d{4})?"
)


class TimeFormatError(SwitchboardError):
    """A value is not an HL7 v2 date or time."""


def hl7_to_iso(value: str) -> str:
    """``20240102030405.12+0100`` -> ``2024-01-02T03:04:05.12+01:00``; ``199001`` ->
    ``1990-01``. TimeFormatError when the value is not a valid DTM."""
    text = value.strip()
    # TS in v2.3-2.5 may carry a precision component (^S, ^D): only the first counts.
    match = _DTM.fullmatch(text)
    if match is None or not _ordered(match):
        raise TimeFormatError(
            f"{text[:40]!r} is not an HL7 date/time",
            hint="Expected YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]",
        )
    parts = match.groupdict()
    _check_calendar(parts, text)
    iso = parts["year"]
    if parts["month"]:
        iso += f"-{parts['month']}"
    if parts["day"]:
        iso += f"-{parts['day']}"
    if parts["hour"]:
        iso += f"T{parts['hour']}"
        if parts["minute"]:
            iso += f":{parts['minute']}"
            if parts["second"]:
                iso += f":{parts['second']}"
                if parts["fraction"]:
                    iso += f".{parts['fraction']}"
    if parts["offset"]:
        if not parts["hour"]:
            # An offset on a bare date means nothing in ISO 8601; keep the date.
            return iso
        offset = parts["offset"]
        iso += f"{offset[:3]}:{offset[3:]}"
    return iso


def _ordered(match: re.Match[str]) -> bool:
    """A fraction needs seconds; each finer unit needs the coarser one before it."""
    return not match.group("fraction") or bool(match.group("second"))


def _check_calendar(parts: dict[str, str | None], text: str) -> None:
    try:
        if parts["day"]:
            date(int(parts["year"] or 0), int(parts["month"] or 1), int(parts["day"]))
        elif parts["month"] and not 1 <= int(parts["month"]) <= 12:
            raise ValueError("month")
        if parts["hour"]:
            datetime(2000, 1, 1, int(parts["hour"]), int(parts["minute"] or 0),
                     int(parts["second"] or 0))
        if parts["offset"] and (int(parts["offset"][1:3]) > 14 or int(parts["offset"][3:]) > 59):
            raise ValueError("offset")
    except ValueError as exc:
        raise TimeFormatError(f"{text[:40]!r} is not a real date/time ({exc})") from None


def iso_date_part(iso: str) -> str:
    """The date part of an ISO value (``1980-01-02T03:04`` -> ``1980-01-02``)."""
    return iso.split("T", 1)[0]
