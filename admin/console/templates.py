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


def message_search_url(by: str, connection: str, status: str = "") -> str:
    """The message browser, filtered to one connection's messages (by ``source`` or
    ``destination``) and, when given, one status."""
    args: dict[str, Any] = {by: connection}
    if status:
        args["delivery_status" if by == "destination" else "status"] = status
    return url_for("messages.index", **args)
