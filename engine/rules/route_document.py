"""A route table's form (engine.rules.route_form) written as the document: each typed
value checked where it was typed, and where each of the document's locations is in the
form, so every finding lands beside its field. Saving through the form never rewrites
what it did not change: values keep the type the document gave them, lists their order.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from typing import Any

from engine.errors import PathError
from engine.hl7v2 import parse_path
from engine.model.canonical import canonical_paths
from engine.model.canonical_path import CanonicalPathError, parse_canonical_path
from engine.rules.conditions import OPS, SCOPES, as_moment, as_number
from engine.rules.field_catalog import item_lists, item_noun
from engine.rules.route_form import (
    CHECKPOINTS,
    GROUPS,
    JOINS,
    LISTS,
    ORDERED,
    PRESENCE,
    Node,
    RouteForm,
    Row,
    value_text,
)

_ID = re.compile(r"^[a-z0-9-]+$")
_DUE = re.compile(r"^[1-9][0-9]*(ms|s|m|h|d)$")


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
    if value_text(before) == text.strip():
        return before
    if isinstance(value, list):
        items = before if isinstance(before, list) else [before]
        numbers = bool(items) and all(_is_number(item) for item in items)
        return [_like(item, items, numbers) for item in value]
    return _like(value, [before], _is_number(before))


def _like(value: Any, before: list[Any], numbers: bool) -> Any:
    text = value_text(value)
    same = next((item for item in before if value_text(item) == text), None)
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
