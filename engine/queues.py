"""What the exception queue and the work queue share: the errors their callers map to
answers (the REST API to 404, 403, 409 and 400, the command line to exit codes), a page of
items, and the statuses in which an item still waits for someone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import SwitchboardError

OPEN = ("open", "assigned")
"""An item or task in these statuses still waits for someone; any other is settled."""


class NotFound(SwitchboardError):
    """No exception item or task has the id asked for."""


class Refused(SwitchboardError):
    """The item's state does not allow the action: it was settled already, or the
    message or delivery it names has moved on. The hint says what to do instead."""


class Forbidden(SwitchboardError):
    """The caller's role may not take the action on this item (a task's queue does not
    name it)."""


class Invalid(SwitchboardError):
    """The request itself is wrong: an edited message that does not parse, an empty
    note, an assignee who may not act on the item."""


class Unfit(Invalid):
    """A well-formed request naming something the item, or the store, does not take:
    an assignee who is no user or may not act on the item, a state the task's route
    row does not name. The API answers it 409, as it depends on what is stored."""


@dataclass(frozen=True)
class Page:
    """One page of a listing: the items as JSON-ready dicts, and how many match (at
    least ``total`` when ``total_exact`` is false: a listing may stop counting)."""

    items: list[dict[str, Any]]
    page: int
    per_page: int
    total: int
    total_exact: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "page": self.page, "per_page": self.per_page,
                "total": self.total, "total_exact": self.total_exact}


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def aware_moment(name: str, value: Any) -> datetime:
    """``value``, an ISO 8601 time with a UTC offset, as a datetime; Invalid naming
    ``name`` otherwise (a time without an offset would be read in someone's zone)."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Invalid(f"{name} must be an ISO 8601 time with an offset",
                      hint="Give it a UTC offset, e.g. 2026-11-24T08:00:00+00:00")
    return moment


def check_page(page: int, per_page: int) -> None:
    if page < 1 or per_page < 1:
        raise Invalid("page and per_page must be whole numbers from 1")


def settled(kind: str, item_id: int, status: str) -> Refused:
    """The refusal for an action on an item nobody waits on any more."""
    return Refused(f"{kind} {item_id} is {status}, no longer open",
                   hint="Nothing is left to do on it; see its audit trail for who settled it")
