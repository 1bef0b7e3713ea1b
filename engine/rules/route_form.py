"""A route table as a form a person fills in, and back: the rows with their match,
their condition as a tree of groups (all, any, not) and leaves, their destinations and
checkpoint. Pure: the console posts the whole form as flat fields, this module reads
them (``read_form``), applies the button pressed (``apply``), checks each typed value
where it was typed, and writes the document (``to_document``) with where each of its
locations is in the form, so every finding lands beside its field.

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

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import PathError
from engine.hl7v2 import parse_path
from engine.model.canonical import canonical_paths
from engine.model.canonical_path import CanonicalPathError, parse_canonical_path
from engine.rules.conditions import OPS, SCOPES, as_moment, as_number
from engine.rules.field_catalog import item_lists, item_noun

GROUPS = ("all", "any", "not")
JOINS = ("all", "any")
PRESENCE = ("exists", "missing")
LISTS = ("in", "not_in")
ORDERED = ("lt", "le", "gt", "ge")
CHECKPOINTS = ("hold", "notify")
_ID = re.compile(r"^[a-z0-9-]+$")
_DUE = re.compile(r"^[1-9][0-9]*(ms|s|m|h|d)$")
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
                value=_value_text(data.get("value")),
                quantifier=str(data.get("quantifier", "any")),
                original=json.dumps(data["value"]) if "value" in data else "")


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_quoted(_value_text(item)) for item in value)
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


# ---- form -> document ------------------------------------------------------------------


@dataclass
class Written:
    """The document a form says, the problems found in it as typed (form key ->
    problem), and where each of the document's locations is in the form."""

    data: dict[str, Any]
    errors: dict[str, str]
    places: dict[str, str]

    def place(self, location: str) -> str:
        """The form key of ``location``, or of its nearest ancestor the form shows."""
        while location and location not in self.places:
            location = re.sub(r"(\[\d+\]|\.[^.\[]+)$", "", location)
        return self.places.get(location, "table")


def to_document(form: RouteForm, complete: bool = True) -> Written:
    """The route table ``form`` says. With ``complete`` false (while it is being filled
    in), a field left empty is not a problem yet; a value typed wrong always is."""
    written = Written({}, {}, {"(document)": "table", "id": "table-id", "rows": "table",
                               "description": "table-description"})
    written.data["id"] = form.id
    if form.description:
        written.data["description"] = form.description
    if complete and not _ID.match(form.id):
        written.errors["table-id"] = ("Use lower-case letters, digits and hyphens, "
                                      "e.g. critical-results")
    written.data["rows"] = [_row_data(row, f"rows-{i}", f"rows[{i}]", written, complete)
                            for i, row in enumerate(form.rows)]
    _duplicate_ids(form, written)
    return written


def _row_data(row: Row, key: str, where: str, written: Written,
              complete: bool) -> dict[str, Any]:
    written.places[where] = key
    for suffix, field_key in ((".id", "id"), (".description", "description"),
                              (".match", "types"), (".match.type", "types"),
                              (".match.event", "events"), (".to", "to"),
                              (".checkpoint", "checkpoint"), (".checkpoint.mode", "checkpoint"),
                              (".checkpoint.queue", "queue"), (".checkpoint.kind", "kind"),
                              (".checkpoint.description", "task-description"),
                              (".checkpoint.due", "due"), (".checkpoint.states", "states")):
        written.places[where + suffix] = f"{key}-{field_key}"
    data: dict[str, Any] = {"id": row.id}
    if (not _ID.match(row.id)) if row.id else complete:
        written.errors[f"{key}-id"] = ("Use lower-case letters, digits and hyphens, e.g. "
                                       "critical-potassium-to-ward")
    if row.description:
        data["description"] = row.description
    match = _match(row)
    if match:
        data["match"] = match
    when = _top_condition(row.when, f"{key}-when", f"{where}.when", written, complete)
    if when is not None:
        data["when"] = when
    data["to"] = _in_order(list(dict.fromkeys(row.to)), row.written.get("to", ""))
    if row.checkpoint:
        data["checkpoint"] = _checkpoint(row, key, written, complete)
    elif complete and not row.to:
        written.errors[f"{key}-to"] = "Choose at least one destination, or add a checkpoint"
    return data


def _match(row: Row) -> dict[str, Any]:
    match: dict[str, Any] = {}
    for name, key, values in (("type", "types", row.types), ("event", "events", row.events)):
        unique = list(dict.fromkeys(values))
        if unique:
            match[name] = _as_chosen(unique, row.written.get(key, ""))
    return match


def _as_chosen(chosen: list[str], written: str) -> str | list[str]:
    """The types (or events) chosen, in the order the document wrote them (new ones
    after), a list when there are several or the document wrote a list."""
    before = _loaded(written)
    chosen = _in_order(chosen, written)
    return chosen if len(chosen) > 1 or isinstance(before, list) else chosen[0]


def _in_order(chosen: list[str], written: str) -> list[str]:
    """``chosen`` (in the pickers' order) in the order the document wrote them."""
    before = _loaded(written)
    order = before if isinstance(before, list) else [before]
    return sorted(chosen, key=lambda v: order.index(v) if v in order else len(order))


def _loaded(written: str) -> Any:
    try:
        return json.loads(written) if written else None
    except ValueError:
        return None


def _checkpoint(row: Row, key: str, written: Written, complete: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"mode": row.checkpoint, "queue": row.queue, "kind": row.task_kind}
    if row.checkpoint not in CHECKPOINTS:
        written.errors[f"{key}-checkpoint"] = "Choose hold or notify"
    if complete and not row.queue:
        written.errors[f"{key}-queue"] = "Choose the task queue the task lands in"
    if complete and not row.task_kind:
        written.errors[f"{key}-kind"] = "Name the kind of task, e.g. critical-result-review"
    if row.task_description:
        data["description"] = row.task_description
    if row.due:
        data["due"] = row.due
        if not _DUE.match(row.due):
            written.errors[f"{key}-due"] = "Write a number and a unit: 30m, 2h or 1d"
    states = [s.strip() for s in row.states.split(",") if s.strip()]
    if states:
        data["states"] = states
    return data


def _top_condition(node: Node, key: str, where: str, written: Written, complete: bool,
                   scope: str | None = None) -> dict[str, Any] | None:
    """The condition of a row's top group (or a scope's): none when it is empty, its one
    condition when the document wrote that one alone."""
    written.places[where] = key
    if node.kind in JOINS and not node.children:
        return None
    if node.kind == "all" and node.lone and len(node.children) == 1:
        return _condition(node.children[0], f"{key}-0", where, written, complete, scope)
    return _condition(node, key, where, written, complete, scope)


def _condition(node: Node, key: str, where: str, written: Written, complete: bool,
               scope: str | None = None) -> dict[str, Any]:
    """The condition of ``node``; ``scope`` is the list whose items it tests, if any."""
    written.places[where] = key
    if node.kind == "leaf":
        return _leaf(node, key, where, written, complete, scope)
    if node.kind in SCOPES:
        return _scope(node, key, where, written, complete, scope)
    if node.kind not in GROUPS:
        written.errors[key] = "Choose all, any or not"
        return {}
    if node.kind == "not" and len(node.children) != 1:
        written.errors[key] = ("'Not' holds one condition: put an 'all' or 'any' group "
                               "inside it for several")
    if complete and not node.children:
        written.errors[key] = "Add a condition to the group, or remove the group"
    children = [_condition(child, f"{key}-{i}", _child_where(node.kind, where, i), written,
                           complete, scope) for i, child in enumerate(node.children)]
    if node.kind == "not":
        return {"not": children[0] if children else {}}
    return {node.kind: children}


def _child_where(kind: str, where: str, index: int) -> str:
    return f"{where}.not" if kind == "not" else f"{where}.{kind}[{index}]"


def _scope(node: Node, key: str, where: str, written: Written, complete: bool,
           outer: str | None) -> dict[str, Any]:
    """``{some: {of, where}}``: the scope's children met by one item together."""
    at = f"{where}.{node.kind}"
    written.places.update({at: key, f"{at}.of": f"{key}-of", f"{at}.where": key})
    if outer is not None:
        written.errors[key] = (f"This is already inside 'for one {item_noun(outer)}': test "
                               "the item's fields here directly, without a second scope")
    if node.of not in {i.path for i in item_lists()} and (node.of or complete):
        written.errors[f"{key}-of"] = "Pick the list whose items are tested, e.g. results[*]"
    if complete and not node.children:
        written.errors[key] = "Add a condition the item must meet, or remove the group"
    join = node.join if node.join in JOINS else "all"
    inner = Node(join, node.children, lone=node.lone)
    condition = _top_condition(inner, key, f"{at}.where", written, complete, node.of)
    written.places[at] = key
    return {node.kind: {"of": node.of, "where": condition or {join: []}}}


def _leaf(node: Node, key: str, where: str, written: Written, complete: bool,
          scope: str | None = None) -> dict[str, Any]:
    for suffix, part in (("field", "path"), ("hl7", "path"), ("op", "op"),
                         ("value", "value"), ("quantifier", "quantifier")):
        written.places[f"{where}.{suffix}"] = f"{key}-{part}"
    source = node.source if node.source in ("field", "hl7") else "field"
    data: dict[str, Any] = {source: node.path, "op": node.op}
    problem = _path_problem(source, node.path, complete, scope)
    if problem:
        written.errors[f"{key}-path"] = problem
    if node.op not in OPS:
        written.errors[f"{key}-op"] = "Choose how to compare"
        return data
    if node.op not in PRESENCE:
        value, problem = typed_value(node.op, node.value, complete)
        data["value"] = _as_written(value, node.value, node.original)
        if problem:
            written.errors[f"{key}-value"] = problem
        if node.quantifier == "all":
            data["quantifier"] = "all"
    return data


def _as_written(value: Any, text: str, original: str) -> Any:
    """``value`` (read from ``text``) with the types the document gave it: unchanged, the
    value as written; else an item typed as it was kept as it was (the number 5, not the
    text '5'), and a new number among numbers written as a number."""
    before = _loaded(original)
    if before is None:
        return value
    if _value_text(before) == text.strip():
        return before
    if isinstance(value, list):
        items = before if isinstance(before, list) else [before]
        numbers = bool(items) and all(_is_number(item) for item in items)
        return [_like(item, items, numbers) for item in value]
    return _like(value, [before], _is_number(before))


def _like(value: Any, before: list[Any], numbers: bool) -> Any:
    text = _value_text(value)
    same = next((item for item in before if _value_text(item) == text), None)
    if same is not None:
        return same
    number = as_number(value) if numbers else None
    return value if number is None else number


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _path_problem(source: str, path: str, complete: bool,
                  scope: str | None = None) -> str | None:
    if not path:
        return "Pick the field to test" if complete else None
    if source == "hl7":
        if scope is not None:
            return (f"Inside 'for one {item_noun(scope)}' a condition reads the item's "
                    "fields, not HL7: pick a record field, or move this condition out of the group")
        try:
            parse_path(path)
        except PathError as error:
            return f"Not an HL7 path ({error.reason}): write it as OBX-3.1 or OBX[*]-8"
        return None
    try:
        steps = parse_canonical_path(path)
        items = parse_canonical_path(scope) if scope else ()
    except CanonicalPathError:
        return "Not a field path: pick one from the list, e.g. results[*].code"
    if scope is not None:
        if items and (*items, *steps) not in canonical_paths():
            return (f"'{path}' is not a field of the items of {scope}: pick one from the "
                    "list, e.g. code")
        return None
    if steps not in canonical_paths():
        return f"'{path}' is not a field of the canonical record: pick one from the list"
    return None


def typed_value(op: str, text: str, complete: bool = True) -> tuple[Any, str | None]:
    """The value ``text`` means for ``op``, and what is wrong with it (None if nothing):
    a list for in/not_in (``a, "b, c"``: a value holding a comma in double quotes), a
    number or date for lt/le/gt/ge, a pattern that compiles."""
    text = text.strip()
    if op in LISTS:
        items = list_items(text)
        if not items and complete:
            return items, ('Type one value or more, separated by commas: HH, LL (a value '
                           'holding a comma in double quotes: "Smith, J")')
        return items, None
    if not text:
        return text, ("Type the value to compare with" if complete else None)
    if op in ORDERED:
        number = as_number(text)
        if number is not None:
            return number, None
        if as_moment(text) is not None:
            return text, None
        return text, f"'{text}' is not a number or a date: type 6.5, or 2024-01-31"
    if op == "matches":
        try:
            re.compile(text)
        except re.error as error:
            return text, f"Not a valid pattern: {error.msg} at character {(error.pos or 0) + 1}"
    return text, None


def list_items(text: str) -> list[str]:
    """The values of ``a, "b, c", d``: separated by commas, a quoted one may hold one."""
    row = next(csv.reader([text], skipinitialspace=True), [])
    return [item.strip() for item in row if item.strip()]


def _duplicate_ids(form: RouteForm, written: Written) -> None:
    seen: set[str] = set()
    for i, row in enumerate(form.rows):
        if row.id and row.id in seen:
            written.errors[f"rows-{i}-id"] = (f"Another row of this table has the id "
                                              f"'{row.id}': give this one its own")
        seen.add(row.id)
