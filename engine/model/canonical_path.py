"""Paths into a canonical record: ``patient.birth_date``, ``results[*].code``,
``patient.identifiers[*].value``, ``results[*].abnormal_flags[*]``.

A path is dot-separated object keys; ``[*]`` after a key expands a list. Reading a path
yields every value it reaches, in document order, skipping absent keys and ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from engine.errors import SwitchboardError

EVERY = "[*]"
"""The step that expands a list."""

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\*\])*)")


class CanonicalPathError(SwitchboardError):
    """A canonical path is malformed."""


def parse_canonical_path(text: str) -> tuple[str, ...]:
    """Steps of ``text``: keys, with ``EVERY`` after each key that expands a list."""
    if not isinstance(text, str) or not text:
        raise CanonicalPathError(f"{text!r} is not a canonical path")
    steps: list[str] = []
    for part in text.split("."):
        match = _STEP.fullmatch(part)
        if match is None:
            raise CanonicalPathError(
                f"{text!r} is not a canonical path",
                hint="Write dotted keys with [*] to expand lists, "
                "e.g. patient.identifiers[*].value",
            )
        steps.append(match.group(1))
        steps.extend([EVERY] * match.group(2).count("[*]"))
    return tuple(steps)


def format_canonical_path(steps: tuple[str, ...]) -> str:
    text = ""
    for step in steps:
        if step == EVERY:
            text += EVERY
        else:
            text += ("." if text else "") + step
    return text


def values_at(record: Any, steps: tuple[str, ...]) -> list[Any]:
    """Every value at ``steps`` in ``record`` (absent keys and None are skipped)."""
    return list(_walk(record, steps, 0))


def _walk(node: Any, steps: tuple[str, ...], index: int) -> Iterator[Any]:
    if node is None:
        return
    if index == len(steps):
        yield node
        return
    step = steps[index]
    if step == EVERY:
        if isinstance(node, list):
            for item in node:
                yield from _walk(item, steps, index + 1)
        return
    if isinstance(node, dict) and step in node:
        yield from _walk(node[step], steps, index + 1)
