"""Every position in a JSON document, for tests that damage documents at random."""

from __future__ import annotations

from typing import Any


def positions(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Each position as its key/index steps, the document itself (``()``) first."""
    found = [prefix]
    if isinstance(node, dict):
        for name, item in node.items():
            found.extend(positions(item, (*prefix, name)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(positions(item, (*prefix, index)))
    return found
