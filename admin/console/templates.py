"""What the console's templates share: how times are shown and where a dashboard number
leads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import url_for


def moment(value: datetime | str | None) -> str:
    """A time as people read it, in UTC with its zone named; empty for none."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(value: datetime | str | None) -> str:
    """How long ago ``value`` was: "4 min ago"."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    seconds = max(0, int((datetime.now(UTC) - value).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def period(seconds: float | None) -> str:
    """A rule's period as it was meant ("30 min", "2 h", "1 d 6 h"): whole units, the
    zero ones left out."""
    if seconds is None:
        return ""
    whole = round(seconds)
    parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "min"),
             (whole % 60, "s")]
    return " ".join(f"{count} {unit}" for count, unit in parts if count) or "at once"


def duration(milliseconds: float | None) -> str:
    """A latency as people say it: "12 ms", "4.2 s", "3 min 5 s", "12 h 51 min"."""
    if milliseconds is None:
        return ""
    if milliseconds < 1000:
        return f"{round(milliseconds)} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def clock(value: datetime | str | None) -> str:
    """A time short enough for a list: "02:00 UTC" today, "2026-12-06 02:00 UTC"
    another day; empty for none. Beside ``age``, it says when as well as how long."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    value = value.astimezone(UTC)
    if value.date() == datetime.now(UTC).date():
        return value.strftime("%H:%M UTC")
    return value.strftime("%Y-%m-%d %H:%M UTC")


def until(value: datetime | str | None) -> str:
    """How long until ``value``: "in 28 min", "in 2 h 5 min"; "now" once it has come."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    seconds = int((value - datetime.now(UTC)).total_seconds())
    if seconds <= 0:
        return "now"
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"in {days} d {hours} h"
    if hours:
        return f"in {hours} h {minutes} min"
    return f"in {max(minutes, 1)} min"


def is_future(value: datetime | str | None) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value > datetime.now(UTC)


def message_search_url(by: str, connection: str, status: str = "") -> str:
    """The message browser, filtered to one connection's messages (by ``source`` or
    ``destination``) and, when given, one status."""
    args: dict[str, Any] = {by: connection}
    if status:
        args["delivery_status" if by == "destination" else "status"] = status
    return url_for("messages.index", **args)
