"""What the exception queue's page is asked for in its query string: the filters, the
items' sort and page, the groups' sort and page; and the addresses of the same page
with one of them changed (a sort header, a page link, a group's items)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flask import url_for
from werkzeug.datastructures import MultiDict

from engine.exception_queue import WAITING

FILTER_ARGS = ("connection", "status", "error_class", "assignee", "signature")
ANY_STATUS = "any"
STATUSES = ((WAITING, "Waiting (open or assigned)"), ("open", "Open"),
            ("assigned", "Assigned"), ("resolved", "Resolved"), ("retried", "Retried"),
            ("reprocessed", "Reprocessed"), ("skipped", "Skipped"), (ANY_STATUS, "Any"))
ITEM_SORT, GROUP_SORT = "-created_at", "-count"
_LONGEST = 200
_LAST_PAGE = 1_000_000


@dataclass(frozen=True)
class ListArgs:
    """The page's query string, read leniently: a value that makes no sense is left
    out (a bad sort is left to the queue, which says what it takes)."""

    connection: str = ""
    status: str = WAITING
    error_class: str = ""
    assignee: str = ""
    signature: str = ""
    sort: str = ITEM_SORT
    page: int = 1
    gsort: str = GROUP_SORT
    gpage: int = 1

    @classmethod
    def read(cls, args: MultiDict[str, str]) -> ListArgs:
        text = {name: args.get(name, "").strip()[:_LONGEST] for name in FILTER_ARGS}
        text["status"] = text["status"] or WAITING
        return cls(**text, sort=args.get("sort", "")[:32] or ITEM_SORT,
                   page=_page(args.get("page")), gsort=args.get("gsort", "")[:32]
                   or GROUP_SORT, gpage=_page(args.get("gpage")))

    def filters(self, signature: bool = True) -> dict[str, str]:
        """The queue's filters: what was asked for, any status meaning none."""
        found = {name: getattr(self, name) for name in FILTER_ARGS}
        if self.status == ANY_STATUS:
            found["status"] = ""
        if not signature:
            found["signature"] = ""
        return {name: value for name, value in found.items() if value}

    @property
    def filtered(self) -> bool:
        return bool(self.connection or self.error_class or self.assignee or self.signature
                    or self.status != WAITING)

    def url(self, **changes: Any) -> str:
        """This page with ``changes``; a change of filter or sort starts at page one."""
        if set(changes) & {*FILTER_ARGS, "sort"} and "page" not in changes:
            changes["page"] = 1
        if set(changes) & {*FILTER_ARGS, "gsort"} and "gpage" not in changes:
            changes["gpage"] = 1
        changed = replace(self, **changes)
        defaults = ListArgs()
        query = {name: value for name, value in vars(changed).items()
                 if value != getattr(defaults, name)}
        return url_for("exceptions.index", **query)

    def sorted_by(self, name: str, which: str = "sort") -> str:
        """"ascending", "descending" or "none": how the list is sorted by ``name``."""
        current = getattr(self, which)
        if current.removeprefix("-") != name:
            return "none"
        return "descending" if current.startswith("-") else "ascending"

    def sort_url(self, name: str, which: str = "sort", first: str = "-") -> str:
        """Sorted by ``name``: the other way round if it is already, else ``first``."""
        state = self.sorted_by(name, which)
        if state == "none":
            return self.url(**{which: f"{first}{name}"})
        return self.url(**{which: name if state == "descending" else f"-{name}"})


def _page(value: str | None) -> int:
    if value and value.isdigit() and value.isascii():
        return max(1, min(int(value), _LAST_PAGE))
    return 1


def page_count(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))
