"""A route table as a form a person fills in, and back: the rows with their match,
their condition as a tree of groups (all, any, not) and leaves, their destinations and
checkpoint. Pure: the console posts the whole form as flat fields, this module reads
them (``read_form``) and applies the button pressed (``apply``); engine.rules.route_document
writes the document back, each typed value checked where it was typed.

Field names: ``table-id``; ``rows-2-description``; a condition node is ``rows-2-when``
(the row's top group), its children ``rows-2-when-0``, ``rows-2-when-0-1``..., each
with ``-kind`` (all, any, not, some, every, leaf); a scope (some, every) with ``-of``
(its list) and ``-join`` (all or any of its children hold for the item); a leaf with
``-source`` (field or hl7), ``-path``, ``-op``, ``-value`` (a list as ``a, "b, c"``),
``-quantifier`` and ``-original`` (the value as the document wrote it, as JSON).

Saving through the form never rewrites what it did not change: a lone condition stays
alone and a one-item group stays a group (``-lone``), a one-item list of events stays a
list, in its order (``rows-2-events-written``), and a value keeps the type the
document gave it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.rules.conditions import SCOPES
from engine.rules.field_catalog import item_lists

GROUPS = ("all", "any", "not")
JOINS = ("all", "any")
PRESENCE = ("exists", "missing")
LISTS = ("in", "not_in")
ORDERED = ("lt", "le", "gt", "ge")
CHECKPOINTS = ("hold", "notify")
Fields = Mapping[str, Sequence[str]]


@dataclass
class Node:
    """A group (``kind`` all, any or not, with ``children``), a scope (some or every,
    whose ``children`` an item of the list ``of`` meets ``join`` of) or a leaf."""

    kind: str = "leaf"
    children: list[Node] = field(default_factory=list)
    source: str = "field"
    path: str = ""
    op: str = "eq"
    value: str = ""
    quantifier: str = "any"
    of: str = ""
    join: str = "all"
    lone: bool = False  # the document wrote the group's one condition alone
    original: str = ""  # the value as the document wrote it, as JSON

    @property
    def holds_conditions(self) -> bool:
        return self.kind in GROUPS or self.kind in SCOPES


@dataclass
class Row:
    id: str = ""
    new: bool = True  # not saved yet: its id may still change
    description: str = ""
    types: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)  # types, events, to as written
    when: Node = field(default_factory=lambda: Node("all", lone=True))
    to: list[str] = field(default_factory=list)
    checkpoint: str = ""  # "", hold or notify
    queue: str = ""
    task_kind: str = ""
    task_description: str = ""
    due: str = ""
    states: str = ""  # notify's states, as "a, b"


@dataclass
class RouteForm:
    id: str = ""
    description: str = ""
    rows: list[Row] = field(default_factory=list)


# ---- document -> form ------------------------------------------------------------------


def from_document(data: Mapping[str, Any]) -> RouteForm:
    return RouteForm(str(data.get("id", "")), str(data.get("description", "")),
                     [_row(row) for row in data.get("rows") or ()])


def _row(data: Mapping[str, Any]) -> Row:
    match = data.get("match") or {}
    checkpoint = data.get("checkpoint") or {}
    return Row(id=str(data.get("id", "")), new=False,
               description=str(data.get("description", "")),
               types=_names(match.get("type")), events=_names(match.get("event")),
               written=_as_written_there(data, match),
               when=_top(data.get("when")), to=[str(d) for d in data.get("to") or ()],
               checkpoint=str(checkpoint.get("mode", "")), queue=str(checkpoint.get("queue", "")),
               task_kind=str(checkpoint.get("kind", "")),
               task_description=str(checkpoint.get("description", "")),
               due=str(checkpoint.get("due", "")),
               states=", ".join(map(str, checkpoint.get("states") or ())))


def _as_written_there(data: Mapping[str, Any], match: Mapping[str, Any]) -> dict[str, str]:
    """The row's types, events and destinations as the document wrote them (JSON), so
    the pickers' order and a one-item list do not rewrite them."""
    written = {name: json.dumps(match[key]) for key, name in
               (("type", "types"), ("event", "events")) if key in match}
    if isinstance(data.get("to"), list):
        written["to"] = json.dumps(data["to"])
    return written


def _top(condition: Any, joins: tuple[str, ...] = GROUPS) -> Node:
    """The row's top group (or a scope's): a lone condition is shown inside an 'all'
    group, so there is a place to add a second condition beside it."""
    if not condition:
        return Node("all", lone=True)
    node = _node(condition)
    return node if node.kind in joins else Node("all", [node], lone=True)


def _node(data: Mapping[str, Any]) -> Node:
    for kind in JOINS:
        if kind in data:
            return Node(kind, [_node(child) for child in data[kind] or ()])
    if "not" in data:
        return Node("not", [_node(data["not"])])
    for kind in SCOPES:
        if kind in data:
            body = data[kind] if isinstance(data[kind], Mapping) else {}
            where = _top(body.get("where"), JOINS)
            return Node(kind, where.children, of=str(body.get("of", "")), join=where.kind,
                        lone=where.lone)
    source = "hl7" if "hl7" in data else "field"
    return Node(source=source, path=str(data.get(source, "")), op=str(data.get("op", "eq")),
                value=value_text(data.get("value")),
                quantifier=str(data.get("quantifier", "any")),
                original=json.dumps(data["value"]) if "value" in data else "")


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_quoted(value_text(item)) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quoted(item: str) -> str:
    """A list item as typed: in double quotes when it holds a comma or starts with one."""
    if "," in item or item.startswith('"') or item != item.strip():
        return '"' + item.replace('"', '""') + '"'
    return item


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


# ---- posted fields -> form -------------------------------------------------------------


def read_form(fields: Fields) -> RouteForm:
    """The form as posted (every value kept as typed, right or wrong)."""
    rows: list[Row] = []
    while f"rows-{len(rows)}-new" in fields:
        rows.append(_posted_row(fields, f"rows-{len(rows)}"))
    return RouteForm(_one(fields, "table-id"), _text(fields, "table-description"), rows)


def _posted_row(fields: Fields, key: str) -> Row:
    return Row(id=_one(fields, f"{key}-id"), new=_one(fields, f"{key}-new") == "1",
               description=_text(fields, f"{key}-description"),
               types=_many(fields, f"{key}-types"), events=_many(fields, f"{key}-events"),
               written={name: _one(fields, f"{key}-{name}-written")
                        for name in ("types", "events", "to")
                        if _one(fields, f"{key}-{name}-written")},
               when=_posted_node(fields, f"{key}-when"), to=_many(fields, f"{key}-to"),
               checkpoint=_one(fields, f"{key}-checkpoint"),
               queue=_one(fields, f"{key}-queue"), task_kind=_one(fields, f"{key}-kind"),
               task_description=_one(fields, f"{key}-task-description"),
               due=_one(fields, f"{key}-due"), states=_one(fields, f"{key}-states"))


def _posted_node(fields: Fields, key: str) -> Node:
    kind = _one(fields, f"{key}-kind") or "all"
    children: list[Node] = []
    while f"{key}-{len(children)}-kind" in fields:
        children.append(_posted_node(fields, f"{key}-{len(children)}"))
    return Node(kind, children, _one(fields, f"{key}-source") or "field",
                _one(fields, f"{key}-path"), _one(fields, f"{key}-op") or "eq",
                _one(fields, f"{key}-value"), _one(fields, f"{key}-quantifier") or "any",
                _one(fields, f"{key}-of"), _one(fields, f"{key}-join") or "all",
                _one(fields, f"{key}-lone") == "1", _one(fields, f"{key}-original"))


def _one(fields: Fields, name: str) -> str:
    values = fields.get(name) or [""]
    return str(values[0]).strip()


def _text(fields: Fields, name: str) -> str:
    """A text as typed (a description may end in a line break), with the browser's
    line breaks made plain."""
    values = fields.get(name) or [""]
    return str(values[0]).replace("\r\n", "\n")


def _many(fields: Fields, name: str) -> list[str]:
    return [str(v).strip() for v in fields.get(name) or () if str(v).strip()]


# ---- the buttons -----------------------------------------------------------------------

NEW_CHILDREN = {"add-condition": lambda: Node(), "add-group": lambda: Node("all", [Node()]),
                "add-scope": lambda: Node("some", [Node()])}


def apply(form: RouteForm, action: str) -> RouteForm:
    """``form`` after the button ``action`` (e.g. ``add-row``, ``up:rows-2``,
    ``add-condition:rows-0-when-1``, ``remove:rows-0-when-1-0``, ``one-item:rows-0-when``
    to test a group's conditions on one list item together); unknown ones do nothing."""
    verb, _, key = action.partition(":")
    if verb == "add-row":
        form.rows.append(Row())
    elif verb in ("up", "down", "delete-row"):
        _move_row(form, verb, _row_index(key, len(form.rows)))
    elif verb in NEW_CHILDREN:
        group = _find(form, key)
        if group is not None and group.holds_conditions:
            group.children.append(NEW_CHILDREN[verb]())
    elif verb == "remove":
        _remove(form, key)
    elif verb == "one-item":
        group = _find(form, key)
        if group is not None and group.kind == "all":
            _gather_in_scope(group)
    for row in form.rows:
        if row.new and not row.id:
            row.id = id_from(row.description)
    return form


def _row_index(key: str, count: int) -> int | None:
    found = re.fullmatch(r"rows-(\d+)", key)
    index = int(found.group(1)) if found else -1
    return index if 0 <= index < count else None


def _move_row(form: RouteForm, verb: str, index: int | None) -> None:
    if index is None:
        return
    if verb == "delete-row":
        del form.rows[index]
        return
    other = index - 1 if verb == "up" else index + 1
    if 0 <= other < len(form.rows):
        form.rows[index], form.rows[other] = form.rows[other], form.rows[index]


def _find(form: RouteForm, key: str) -> Node | None:
    found = re.fullmatch(r"rows-(\d+)-when((?:-\d+)*)", key)
    if found is None or int(found.group(1)) >= len(form.rows):
        return None
    node = form.rows[int(found.group(1))].when
    for step in filter(None, found.group(2).split("-")):
        if int(step) >= len(node.children):
            return None
        node = node.children[int(step)]
    return node


def _remove(form: RouteForm, key: str) -> None:
    parent_key, _, index = key.rpartition("-")
    parent = _find(form, parent_key)
    if parent is not None and index.isdigit() and int(index) < len(parent.children):
        del parent.children[int(index)]


def shared_list(group: Node) -> str | None:
    """The list (``results[*]``) two or more of ``group``'s field conditions read items
    of, each on its own: they may be met by different items. None if there is none."""
    if group.kind != "all":
        return None
    counts: dict[str, int] = {}
    for child in group.children:
        of = _item_list(child)
        if of:
            counts[of] = counts.get(of, 0) + 1
    return next((of for of, count in counts.items() if count > 1), None)


def _item_list(node: Node) -> str | None:
    """The offered list whose items the field leaf ``node`` reads a field of."""
    if node.kind != "leaf" or node.source != "field":
        return None
    return next((i.path for i in item_lists() if node.path.startswith(i.path + ".")), None)


def _gather_in_scope(group: Node) -> None:
    """Move the group's leaves that read items of one list into a 'some' scope over it,
    at the first one's place, their paths made relative to the item."""
    of = shared_list(group)
    if of is None:
        return
    at = next(i for i, child in enumerate(group.children) if _item_list(child) == of)
    moved = [child for child in group.children if _item_list(child) == of]
    rest = [child for child in group.children if _item_list(child) != of]
    for leaf in moved:
        leaf.path = leaf.path.removeprefix(of + ".")
    group.children = [*rest[:at], Node("some", moved, of=of), *rest[at:]]


def id_from(description: str) -> str:
    """A row id from its description: lower case, words joined by hyphens, short."""
    words = re.sub(r"[^a-z0-9]+", "-", description.lower()).strip("-")
    return words[:60].rstrip("-")
