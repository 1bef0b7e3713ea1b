"""What a route condition can read, for people who pick rather than type: every
canonical field with the schema's description of it, the lists whose items a scope
tests one at a time and their items' fields, every HL7 v2 field and component
Switchboard names, and the message types and events a rule set's mappings and routes
use (for the row's type and event pickers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from engine.hl7v2.field_names import COMPONENTS, DATA_TYPES, FIELDS, SEGMENTS
from engine.model.canonical_path import EVERY
from engine.model.schemas import schema


@dataclass(frozen=True)
class Pickable:
    """One path a condition may read, with what it is in words."""

    path: str
    words: str


@cache
def canonical_fields() -> tuple[Pickable, ...]:
    """Every canonical path, in the schema's order, each with the nearest description
    (its own, else its type's, else the object's it belongs to). A part of a type many
    fields share (a person's family name) also says whose it is, the field's words."""
    root = schema("canonical")
    found: list[Pickable] = []
    _walk(root, root, "", root.get("description", ""), found)
    return tuple(found)


def _walk(root: dict[str, Any], node: dict[str, Any], prefix: str, inherited: str,
          found: list[Pickable]) -> None:
    if _is_list(root, node):
        node = _resolved(root, node).get("items", {})
        prefix += EVERY
    shared = _is_shared(root, node)
    node = _resolved(root, node)
    for key, child in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        words = child.get("description") or _resolved(root, child).get("description") or ""
        if words and shared and inherited:
            words = f"{words} Part of: {inherited}"
        shown = path + EVERY if _is_list(root, child) else path
        found.append(Pickable(shown, words or _plain(key, inherited)))
        _walk(root, child, path, words or inherited, found)


def _is_shared(root: dict[str, Any], node: dict[str, Any]) -> bool:
    """Whether ``node`` is a ``$ref`` to a type more than one field uses."""
    ref = node.get("$ref")
    return isinstance(ref, str) and _ref_counts(root).get(ref, 0) > 1


def _ref_counts(root: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                counts[node["$ref"]] = counts.get(node["$ref"], 0) + 1
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return counts


def _is_list(root: dict[str, Any], node: dict[str, Any]) -> bool:
    node = _resolved(root, node)
    return node.get("type") == "array" or "items" in node


def _resolved(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: dict[str, Any] = root["$defs"][ref.split("/")[-1]]
        return {**resolved, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _plain(key: str, inherited: str) -> str:
    words = key.replace("_", " ").capitalize()
    return f"{words}, in: {inherited}" if inherited else words


@cache
def hl7_fields() -> tuple[Pickable, ...]:
    """Every named HL7 field (``OBX-8``) and component (``OBX-3.1``), with its segment's
    and its own names."""
    found = []
    for segment, names in FIELDS.items():
        for number, name in enumerate(names, start=1):
            found.append(Pickable(f"{segment}-{number}", f"{SEGMENTS[segment]}: {name}"))
            parts = COMPONENTS.get(DATA_TYPES.get(f"{segment}-{number}", ""), ())
            for position, part in enumerate(parts, start=1):
                found.append(Pickable(f"{segment}-{number}.{position}",
                                      f"{SEGMENTS[segment]}: {name}, {part}"))
    return tuple(found)


def words_for(source: str, path: str, of: str = "") -> str:
    """What ``path`` reads, in words; "" when it is not a path the pickers offer. An HL7
    path with ``[*]`` (every repetition) is named as the path without it; with ``of``
    (a scope's list), ``path`` is relative to its items."""
    if source == "hl7":
        plain = path.replace("[*]", "")
        return next((p.words for p in hl7_fields() if p.path == plain), "")
    pickable = item_fields(of) if of else canonical_fields()
    return next((p.words for p in pickable if p.path == path), "")


@dataclass(frozen=True)
class ItemList:
    """A list a scope may test one item at a time (``results[*]``), its item named as
    people say it (``result``)."""

    path: str
    noun: str
    words: str


@cache
def item_lists() -> tuple[ItemList, ...]:
    """The canonical lists with one ``[*]``, at the end, whose items have fields."""
    paths = [p.path for p in canonical_fields()]
    return tuple(ItemList(p.path, _noun(p.path), p.words) for p in canonical_fields()
                 if p.path.endswith(EVERY) and p.path.count(EVERY) == 1
                 and any(other.startswith(p.path + ".") for other in paths))


def _noun(path: str) -> str:
    """One item of the list at ``path``: results[*] -> result, addresses[*] -> address."""
    name = path.removesuffix(EVERY).rsplit(".", 1)[-1].replace("_", " ")
    if name.endswith("sses"):
        return name[:-2]
    return name[:-1] if name.endswith("s") else f"{name} entry"


def item_noun(of: str) -> str:
    """The item of the list ``of`` in words; "item" for a list the pickers do not offer."""
    return next((i.noun for i in item_lists() if i.path == of), "item")


@cache
def item_fields(of: str) -> tuple[Pickable, ...]:
    """The fields of one item of the list ``of``, relative to it (``code``,
    ``abnormal_flags[*]``), with their words."""
    prefix = of + "."
    return tuple(Pickable(p.path.removeprefix(prefix), p.words)
                 for p in canonical_fields() if p.path.startswith(prefix))


def message_kinds(documents: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Message type -> its events, from the mappings' ``applies_to`` (``ORU^R01``,
    ``ADT^*``) and the route rows' ``match``; both sorted."""
    kinds: dict[str, set[str]] = {}
    for doc in documents:
        data = doc.get("data") or {}
        if doc.get("kind") == "mapping":
            for pattern in data.get("applies_to") or ():
                kind, _, event = str(pattern).partition("^")
                kinds.setdefault(kind, set()).update({event} - {"*", ""})
        elif doc.get("kind") == "routes":
            for row in data.get("rows") or ():
                _add_match(kinds, row.get("match") or {})
    return {kind: sorted(events) for kind, events in sorted(kinds.items()) if kind != "*"}


def _add_match(kinds: dict[str, set[str]], match: Mapping[str, Any]) -> None:
    events = set(_names(match.get("event")))
    for kind in _names(match.get("type")) or [""]:
        if kind:
            kinds.setdefault(kind, set()).update(events)


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]
