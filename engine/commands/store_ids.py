"""Ids and version numbers on the command line, checked against what the store can
hold before any query sees them: a number past the store's range is a usage error,
not a driver's overflow."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from engine.store.limits import MAX_ID, MAX_VERSION


def _bounded(what: str, largest: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} is a whole number, not {text!r}") from None
        if not 1 <= number <= largest:
            raise argparse.ArgumentTypeError(f"{what} runs from 1 to {largest}, not {text}")
        return number

    parse.__name__ = what  # argparse names the type in its messages
    return parse


store_id = _bounded("an id", MAX_ID)
version_number = _bounded("a version number", MAX_VERSION)
