"""The message browser's search as query arguments: read forgivingly from a form or a
link (the dashboard's tiles, a saved search, a value clicked in a parsed message),
handed to the message log as its parameters (engine.message_log.PARAMETERS), and
written back into links that keep it. Times are typed in UTC; the log takes them with
their offset."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import url_for

from engine.message_log import DELIVERY_STATUSES, PARAMETERS, SORTS

FILTERS = ("control_id", "patient", "patient_authority", "type", "event", "source",
           "status", "destination", "delivery_status", "path", "value", "since", "until")
"""The filters a person can set, in the order the form asks for them."""
LABELS = {"control_id": "Control id", "patient": "Patient identifier",
          "patient_authority": "Authority", "type": "Type", "event": "Event",
          "source": "Source", "status": "Status", "destination": "Destination",
          "delivery_status": "Delivery status", "path": "HL7 path", "value": "Value there",
          "since": "Received from (UTC)", "until": "Received before (UTC)"}
STATUSES = {"received": "Waiting to be routed", "routing": "Being routed",
            "routed": "Routed", "failed": "Failed", "held": "Held behind a failure",
            "rejected": "Rejected", "duplicate": "Duplicate", "conflict": "Conflicting copy",
            "stale": "Older than a version already routed", "oversize": "Too large"}
"""Journal statuses in words (engine.journal.Kind, and what the pipeline sets)."""
DELIVERY_WORDS = {"held": "Held for review", "pending": "Waiting to be sent",
                  "retrying": "Sending again after a failure", "in_flight": "Being sent",
                  "delivered": "Delivered", "dead": "Failed: gave up",
                  "failed": "Failed", "cancelled": "Cancelled"}
LONGEST = 200
LAST_PAGE = 10_000
_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
assert set(FILTERS) | {"sort"} == set(PARAMETERS)
assert set(DELIVERY_WORDS) == set(DELIVERY_STATUSES)


@dataclass(frozen=True)
class SearchArgs:
    """The filters given (as typed), the order and the page."""

    values: dict[str, str] = field(default_factory=dict)
    sort: str = SORTS[0]
    page: int = 1

    @classmethod
    def read(cls, args: Mapping[str, str]) -> SearchArgs:
        values = {name: str(args.get(name, "")).strip()[:LONGEST] for name in FILTERS}
        sort = str(args.get("sort", SORTS[0]))
        try:
            page = int(str(args.get("page", "1")))
        except ValueError:
            page = 1
        return cls({name: value for name, value in values.items() if value},
                   sort if sort in SORTS else SORTS[0], min(max(page, 1), LAST_PAGE))

    @classmethod
    def of_text(cls, text: str) -> SearchArgs:
        """A search carried in one argument (``q``) as a query string."""
        return cls.read(dict(parse_qsl(text[:4000])))

    def query(self) -> dict[str, str]:
        """The message log's parameters: a time typed without an offset is UTC."""
        query = dict(self.values)
        for name in ("since", "until"):
            if name in query and _MINUTE.fullmatch(query[name]):
                query[name] = _utc(query[name])
        return {**query, "sort": self.sort}

    def given(self) -> dict[str, str]:
        """The query arguments that say this search: filters, and the order if not the
        default (not the page)."""
        return {**self.values, **({} if self.sort == SORTS[0] else {"sort": self.sort})}

    def text(self) -> str:
        return urlencode(self.given())

    def url(self, **changes: Any) -> str:
        """The browser with this search and ``changes`` (a change to "" drops it); back
        to page 1 unless ``changes`` names one."""
        args: dict[str, Any] = {**self.given(), **changes}
        if args.get("sort") == SORTS[0]:
            del args["sort"]
        return url_for("messages.index", **{name: value for name, value in args.items()
                                            if value not in ("", None, 1)})

    def with_filter(self, **filters: str) -> str:
        """This search with ``filters`` added (or replaced): a value clicked."""
        return self.url(**filters)

    def chips(self) -> list[tuple[str, str, str]]:
        """(label, value, the search without it) for each filter given."""
        return [(LABELS[name], value, self.url(**{name: ""}))
                for name, value in self.values.items()]

    def field_of(self, error: str) -> str | None:
        """The filter an error of the message log is about, to show it beside it."""
        for name in sorted(FILTERS, key=len, reverse=True):
            if re.search(rf"\b{name}\b", error):
                return name
        return "path" if "indexed path" in error else None

    def input_time(self, name: str) -> str:
        """A time as a datetime-local input shows it (UTC, to the minute)."""
        value = self.values.get(name, "")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M")


def _utc(minute: str) -> str:
    return minute + (":00" if minute.count(":") == 1 else "") + "+00:00"

