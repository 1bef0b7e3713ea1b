"""Whole numbers from a request, checked against what the store holds before a query
sees them (the drivers raise on larger ones): the URL converters for ids in a path,
which answer a number out of range 404, and the readers for ids in a JSON body or a
query string, which refuse one with 400 naming the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import abort, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from engine.store.limits import MAX_ID, MAX_VERSION

_DIGITS = re.compile(r"[0-9]{1,20}")


@dataclass(frozen=True)
class Bounds:
    """Which whole numbers a field may hold (from 1), and what to call them."""

    what: str
    largest: int

    def holds(self, value: int) -> bool:
        return 1 <= value <= self.largest

    def refusal(self, name: str) -> str:
        return f"{name} must be {self.what} from 1 to {self.largest:,}"


IDS = Bounds("an id", MAX_ID)
VERSIONS = Bounds("a version number", MAX_VERSION)


class IdConverter(IntegerConverter):
    """``<id:name>``: a row id the store can hold."""

    regex = r"[0-9]+"  # ASCII: \d would match other scripts' digits too
    bounds = IDS

    def to_python(self, value: str) -> int:
        number = int(value) if _DIGITS.fullmatch(value) else 0
        if not self.bounds.holds(number):
            # NotFound rather than ValidationError: Werkzeug answers the latter with 405
            # when another method has a route on the same path.
            raise NotFound(description=f"no such item: {self.bounds.what} runs from 1 to "
                                       f"{self.bounds.largest:,}")
        return number


class VersionConverter(IdConverter):
    """``<version:name>``: a rule-set version number the store can hold."""

    bounds = VERSIONS


CONVERTERS = {"id": IdConverter, "version": VersionConverter}


def body_number(body: dict[str, Any], name: str, bounds: Bounds) -> int | None:
    """A whole-number member of the JSON body within ``bounds``; None when absent,
    400 naming the field when it is anything else (null included)."""
    if name not in body:
        return None
    value = body[name]
    # JSON has numbers, not integers: 2.0 is the whole number 2.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not bounds.holds(value):
        abort(400, description=bounds.refusal(f'"{name}"'))
    return value


def query_number(name: str, bounds: Bounds) -> int | None:
    """A whole number from the query string within ``bounds``; None when absent, 400
    naming the parameter when it is anything else."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw) or not bounds.holds(int(raw)):
        abort(400, description=bounds.refusal(name))
    return int(raw)
