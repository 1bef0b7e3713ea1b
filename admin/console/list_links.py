"""Links that keep a console list's filters: to another of its pages, sorted another
way, or to its CSV export. Lists page, sort and filter on the server, by query args."""

from __future__ import annotations

from typing import Any

from flask import request, url_for


def url_with(endpoint: str | None = None, **changes: Any) -> str:
    """This request's list (or ``endpoint``, e.g. its export) with the same query args,
    but for ``changes``; a change to None drops the arg."""
    args: dict[str, Any] = request.args.to_dict()
    for name, value in changes.items():
        if value is None or value == "":
            args.pop(name, None)
        else:
            args[name] = str(value)
    return url_for(endpoint or str(request.endpoint), **(request.view_args or {}), **args)


def sort_url(key: str, current: str) -> str:
    """The list sorted by ``key``: the other way round when it is sorted by it already;
    back on its first page."""
    return url_with(sort=f"-{key}" if current == key else key, page=None)


def sort_state(key: str, current: str) -> str:
    """What ``aria-sort`` says of a column: ascending, descending or none."""
    if current == key:
        return "ascending"
    return "descending" if current == f"-{key}" else "none"


LINKS = {"url_with": url_with, "sort_url": sort_url, "sort_state": sort_state}
"""For a list template's render call."""
