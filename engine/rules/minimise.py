"""Data-scope projection: a destination receives only the parts of the canonical record
its catalog entry allows (minimum necessary).

A scope is a list of canonical paths (``patient.birth_date``, ``results[*].code``); each
selects the whole subtree at that path, and the entries merge. The projection keeps
only what is selected, with these rules:

* absent keys, ``None`` and paths that do not fit the record's shape select nothing;
* an object or list with nothing selected inside is left out of its parent;
* a list keeps its elements at their positions, so ``results[2]`` of the projection is
  ``results[2]`` of the record: an element with nothing selected becomes an empty
  placeholder (``[]`` when the element is a list, ``{}`` otherwise) when a later element
  has something selected, and trailing elements with nothing selected are dropped;
* a selected subtree is copied as it is (``None`` values inside it included), and the
  projection shares no list or object with the record, which is never changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.model.canonical_path import EVERY, CanonicalPathError, parse_canonical_path
from engine.rules.conditions import RuleError


class ScopeError(RuleError):
    """A data scope entry is not a canonical path."""


@dataclass
class _Selection:
    """A trie of scope paths: ``whole`` selects the subtree here; otherwise ``keys``
    (object members) and ``every`` (each list element) say what to select below."""

    whole: bool = False
    keys: dict[str, _Selection] = field(default_factory=dict)
    every: _Selection | None = None

    def add(self, steps: tuple[str, ...]) -> None:
        node = self
        for step in steps:
            if node.whole:
                return  # already selected entirely: the longer path adds nothing
            if step == EVERY:
                node.every = node.every or _Selection()
                node = node.every
            else:
                node = node.keys.setdefault(step, _Selection())
        node.whole, node.keys, node.every = True, {}, None


_NOTHING: Any = object()
"""Marks a subtree with nothing selected (distinct from a selected ``None``)."""


@dataclass(frozen=True)
class Scope:
    """A compiled data scope; :meth:`project` applies it to a canonical record."""

    paths: tuple[str, ...]
    _root: _Selection = field(repr=False, compare=False)

    def project(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The parts of ``record`` the scope selects, as a new dict."""
        selected = _select(record, self._root)
        return selected if isinstance(selected, dict) else {}


def compile_scope(paths: Sequence[str]) -> Scope:
    """Compile a connection's data scope; ScopeError names the entry that is wrong."""
    root = _Selection()
    for index, path in enumerate(paths):
        try:
            root.add(parse_canonical_path(path))
        except CanonicalPathError as exc:
            raise ScopeError(f"data scope entry {index}: {exc}") from None
    return Scope(tuple(paths), root)


def _select(value: Any, selection: _Selection) -> Any:
    if value is None:
        return _NOTHING
    if selection.whole:
        return _copy(value)
    if isinstance(value, dict) and selection.keys:
        found = {}
        for key, item in value.items():  # the record's key order, for stable output
            below = selection.keys.get(key)
            if below is not None:
                picked = _select(item, below)
                if picked is not _NOTHING:
                    found[key] = picked
        return found or _NOTHING
    if isinstance(value, list) and selection.every is not None:
        return _select_items(value, selection.every)
    return _NOTHING


def _select_items(items: list[Any], selection: _Selection) -> Any:
    picked = [_select(item, selection) for item in items]
    while picked and picked[-1] is _NOTHING:
        picked.pop()
    if not picked:
        return _NOTHING
    return [
        ([] if isinstance(item, list) else {}) if chosen is _NOTHING else chosen
        for item, chosen in zip(items, picked, strict=False)
    ]


def _copy(value: Any) -> Any:
    """A copy sharing no list or dict with ``value`` (scalars are immutable)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
