"""A rule document as a form, drawn from its JSON Schema: one field per property, with
the schema's description as its help and its first example as its placeholder, so the
console's editors and the schema cannot drift apart. And the way back: the posted
fields as the document, typed as the schema says, with the values that are not what
their field takes named beside it.

A field's name is the document path the linter and the schema checks use
(``sla.availability``, ``policies[1].backoff.kind``), so every path-qualified finding
lands beside its field. A list of objects is a group per item; a list of choices is a
set of checkboxes; other lists of text are one entry per line. ``allOf`` branches
whose ``if`` holds for the document (a connection's endpoint by its transport, a
backoff's settings by its kind) add their properties.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# A form posts text: what each field kind is drawn as, and read back from.
TEXT, LONG_TEXT, NUMBER, INTEGER, CHOICE, YES_NO, CHOICES, LINES, GROUP, ITEMS, PAIRS = (
    "text", "long_text", "number", "integer", "choice", "yes_no", "choices", "lines",
    "group", "items", "pairs")
# Properties whose text runs to several lines.
_LONG = frozenset({"description", "recovery_procedure"})
_INDEX = re.compile(r"\[(\d+)\]\.")


@dataclass(frozen=True)
class FormField:
    name: str  # the document path, and the form field's name
    key: str  # the property
    label: str
    help: str
    kind: str
    value: Any  # text; a list of text for CHOICES and LINES
    choices: tuple[str, ...] = ()
    required: bool = False
    example: str = ""
    fields: tuple[FormField, ...] = ()  # a GROUP's properties
    items: tuple[FormField, ...] = ()  # ITEMS: one GROUP per item


@dataclass
class ReadBack:
    """The document a form posted, and what in it is not what its field takes."""

    data: dict[str, Any]
    problems: dict[str, str] = field(default_factory=dict)


def form_fields(schema: Mapping[str, Any], data: Mapping[str, Any] | None,
                choices: Mapping[str, tuple[str, ...]] | None = None) -> tuple[FormField, ...]:
    """The fields of a document of ``schema`` holding ``data``. ``choices`` offers a
    closed list for a property, by its key (connection ids for ``connections``)."""
    return _fields(schema, _effective(schema, schema, data or {}), data or {}, "",
                   dict(choices or {}))


def read_form(schema: Mapping[str, Any], form: Mapping[str, list[str]],
              before: Mapping[str, Any] | None = None) -> ReadBack:
    """The document the fields of ``form`` (name -> posted values) make. Text that
    differs from ``before`` (the document as it was) only in the whitespace a form
    cannot keep, or in the order of a list's ticked boxes, is kept as it was: saving an
    untouched form changes nothing."""
    back = ReadBack({})
    data = _read_object(schema, schema, form, "", back.problems, {})
    back.data = _unchanged_text(before, data) if before is not None else data
    return back


def item_count(form: Mapping[str, list[str]], name: str) -> int:
    """How many items of the list ``name`` a form posted (its fields ``name[i].x``)."""
    prefix = f"{name}["
    found = [int(match.group(1)) for key in form if key.startswith(prefix)
             for match in [_INDEX.match(key[len(name):])] if match]
    return max(found, default=-1) + 1


# -- drawing ---------------------------------------------------------------------------------


def _fields(root: Mapping[str, Any], node: Mapping[str, Any], data: Mapping[str, Any],
            prefix: str, choices: dict[str, tuple[str, ...]]) -> tuple[FormField, ...]:
    required = set(node.get("required", ()))
    return tuple(
        _field(root, _resolve(root, spec), data.get(key), f"{prefix}{key}", key,
               key in required, choices)
        for key, spec in node.get("properties", {}).items()
        if not _forbidden(spec))


def _field(root: Mapping[str, Any], spec: Mapping[str, Any], value: Any, name: str, key: str,
           required: bool, choices: dict[str, tuple[str, ...]]) -> FormField:
    kind = _kind(root, spec, key, choices)
    base = FormField(name, key, _label(key), str(spec.get("description", "")), kind, "",
                     required=required, example=_example(spec))
    if kind == GROUP:
        inner = value if isinstance(value, Mapping) else {}
        node = _effective(root, spec, inner)
        return replace(base, fields=_fields(root, node, inner, f"{name}.", choices))
    if kind == ITEMS:
        item = _resolve(root, spec["items"])
        rows = [row if isinstance(row, Mapping) else {}
                for row in (value if isinstance(value, list) else [])]
        return replace(base, items=tuple(
            FormField(f"{name}[{index}]", key, f"{_label(key)} {index + 1}", "", GROUP, "",
                      fields=_fields(root, _effective(root, item, row), row,
                                     f"{name}[{index}].", choices))
            for index, row in enumerate(rows)))
    if kind == CHOICES:
        return replace(base, value=[str(v) for v in value or []],
                       choices=_item_choices(root, spec, key, choices))
    if kind == LINES:
        return replace(base, value=[str(v) for v in value or []])
    if kind == PAIRS:
        pairs = value if isinstance(value, Mapping) else {}
        return replace(base, value=[f"{k} = {_pair_value(v)}" for k, v in pairs.items()])
    if kind == CHOICE:
        return replace(base, value="" if value is None else str(value),
                       choices=tuple(str(v) for v in spec["enum"]))
    if kind == YES_NO:
        return replace(base, value={True: "yes", False: "no"}.get(value, ""))
    return replace(base, value="" if value is None else str(value))


def _kind(root: Mapping[str, Any], spec: Mapping[str, Any], key: str,
          choices: Mapping[str, tuple[str, ...]]) -> str:
    kind = spec.get("type")
    if "enum" in spec:
        return CHOICE
    if kind == "object":
        return PAIRS if isinstance(spec.get("additionalProperties"), dict) else GROUP
    if kind == "array":
        item = _resolve(root, spec.get("items", {}))
        if item.get("type") == "object":
            return ITEMS
        return CHOICES if "enum" in item or key in choices else LINES
    if kind == "boolean":
        return YES_NO
    if kind == "integer":
        return INTEGER
    if kind == "number":
        return NUMBER
    return LONG_TEXT if key in _LONG else TEXT


def _item_choices(root: Mapping[str, Any], spec: Mapping[str, Any], key: str,
                  choices: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    if key in choices:
        return choices[key]
    return tuple(str(v) for v in _resolve(root, spec["items"])["enum"])


def _label(key: str) -> str:
    words = key.replace("_", " ")
    return words[:1].upper() + words[1:]


def _example(spec: Mapping[str, Any]) -> str:
    examples = spec.get("examples") or []
    first = examples[0] if examples else spec.get("default", "")
    if isinstance(first, list):
        return ", ".join(map(str, first))
    return "" if isinstance(first, dict) else str(first)


# -- reading back ----------------------------------------------------------------------------


def _read_object(root: Mapping[str, Any], node: Mapping[str, Any],
                 form: Mapping[str, list[str]], prefix: str, problems: dict[str, str],
                 so_far: Mapping[str, Any]) -> dict[str, Any]:
    """Properties read in schema order, each by the ``allOf`` branches the values read
    before it choose (a transport before its endpoint, a kind before its settings)."""
    data: dict[str, Any] = {}
    seen: set[str] = set()
    while True:
        effective = _effective(root, node, {**so_far, **data})
        following = next(((key, spec) for key, spec in effective["properties"].items()
                          if key not in seen and not _forbidden(spec)), None)
        if following is None:
            return data
        key, spec = following
        seen.add(key)
        value = _read_value(root, _resolve(root, spec), form, f"{prefix}{key}", key, problems)
        if value is not None:
            data[key] = value


def _read_value(root: Mapping[str, Any], spec: Mapping[str, Any],
                form: Mapping[str, list[str]], name: str, key: str,
                problems: dict[str, str]) -> Any:
    kind = _kind(root, spec, key, {})
    if kind == GROUP:
        value = _read_object(root, spec, form, f"{name}.", problems, {})
        return value or None
    if kind == ITEMS:
        item = _resolve(root, spec["items"])
        rows = [_read_object(root, item, form, f"{name}[{index}].", problems, {})
                for index in range(item_count(form, name))]
        return [row for row in rows if row] or None
    if kind == LONG_TEXT:
        return _long_text(form.get(name, []))
    values = [v.strip() for v in form.get(name, [])]
    if kind == PAIRS:
        return _read_pairs(root, spec, values, name, problems)
    if kind in (CHOICES, LINES):
        lines = [line.strip() for v in values for line in v.splitlines() if line.strip()]
        return lines or None
    text = values[0] if values else ""
    if not text:
        return None
    return _typed(spec, kind, text, name, problems)


def _long_text(values: list[str]) -> str | None:
    """Text of several lines ends with a line break, as YAML's literal blocks keep it;
    a browser's CRLF becomes LF."""
    text = "\n".join(line.rstrip() for line in (values[0] if values else "").splitlines())
    text = text.strip("\n")
    if not text.strip():
        return None
    return f"{text}\n" if "\n" in text else text


def _read_pairs(root: Mapping[str, Any], spec: Mapping[str, Any], values: list[str],
                name: str, problems: dict[str, str]) -> dict[str, Any] | None:
    """``key = value`` lines; a value whose schema is an object of one required
    property (a secret's variable) is wrapped in it."""
    inner = _resolve(root, spec["additionalProperties"])
    wrap = inner.get("required", [None])[0] if inner.get("type") == "object" else None
    pairs: dict[str, Any] = {}
    for line in (line.strip() for v in values for line in v.splitlines()):
        if not line:
            continue
        key, equals, value = (part.strip() for part in line.partition("="))
        if not equals or not key or not value:
            problems[name] = f"Write one per line as name = value, like {_pair_example(spec)}"
            continue
        pairs[key] = {wrap: value} if wrap else value
    return pairs or None


def _pair_value(value: Any) -> str:
    if isinstance(value, Mapping) and len(value) == 1:
        return str(next(iter(value.values())))
    return str(value)


def _pair_example(spec: Mapping[str, Any]) -> str:
    examples = spec.get("examples") or [{}]
    return next((f"{k} = {_pair_value(v)}" for k, v in examples[0].items()), "name = value")


def _typed(spec: Mapping[str, Any], kind: str, text: str, name: str,
           problems: dict[str, str]) -> Any:
    if kind == YES_NO:
        return {"yes": True, "no": False}.get(text)
    if kind == INTEGER:
        try:
            return int(text)
        except ValueError:
            problems[name] = f"Enter a whole number, like {_example(spec) or 5}"
            return text
    kinds = spec.get("type")
    if kind == NUMBER or (isinstance(kinds, list) and "number" in kinds):
        try:
            number = float(text)
        except ValueError:
            if kind == NUMBER:
                problems[name] = f"Enter a number, like {_example(spec) or 0.5}"
            return text
        return int(number) if number.is_integer() and "." not in text else number
    return text


def _unchanged_text(before: Any, after: Any) -> Any:
    if isinstance(before, str) and isinstance(after, str):
        return before if before.split() == after.split() else after
    if isinstance(before, Mapping) and isinstance(after, dict):
        return {key: _unchanged_text(before.get(key), value) for key, value in after.items()}
    if isinstance(before, list) and isinstance(after, list):
        if all(isinstance(v, str) for v in (*before, *after)):
            # Ticked boxes post in the page's order: keep the order they were written in.
            return [v for v in before if v in after] + [v for v in after if v not in before]
        if len(before) == len(after):
            return [_unchanged_text(old, new) for old, new in zip(before, after, strict=True)]
    return after


# -- the schema ------------------------------------------------------------------------------


def _resolve(root: Mapping[str, Any], spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec`` with a local ``$ref`` followed; its own keys win over the target's."""
    ref = spec.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return spec
    target = _resolve(root, root["$defs"][ref.removeprefix("#/$defs/")])
    return {**target, **{k: v for k, v in spec.items() if k != "$ref"}}


def _effective(root: Mapping[str, Any], node: Mapping[str, Any],
               data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``node`` with the properties of each ``allOf`` branch whose ``if`` holds."""
    properties = dict(node.get("properties", {}))
    for branch in node.get("allOf", ()):
        if _holds(branch.get("if", {}), data):
            then = _resolve(root, branch.get("then", {}))
            for key, spec in then.get("properties", {}).items():
                if spec is False:
                    properties[key] = {"not": {}}
                elif isinstance(spec, Mapping):
                    properties[key] = {**properties.get(key, {}), **spec}
    return {**node, "properties": properties}


def _holds(condition: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """The ``if`` forms the shipped schemas use: required keys, and a property that is
    (or is not) a constant."""
    if any(key not in data for key in condition.get("required", ())):
        return False
    for key, test in condition.get("properties", {}).items():
        if key not in data:
            continue
        if "const" in test and data[key] != test["const"]:
            return False
        if "not" in test and data[key] == test["not"].get("const", object()):
            return False
    return True


def _forbidden(spec: Mapping[str, Any]) -> bool:
    """A property a branch rules out (``not: {}``): a task queue's access on a
    connection of another transport."""
    return spec.get("not") == {}
