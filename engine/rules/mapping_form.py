"""A mapping document as a table a person fills in, and back: one row per canonical
target. A plain entry (an HL7 path, at most one transform, a lookup, a text default)
is edited in its cells; any other spec (each, first_of, cases, a constant, a typed
value) as a small YAML text in its row. Pure: the console posts the whole form as flat
fields, this module reads them (``read_form``), applies the button pressed (``apply``),
checks each typed value where it was typed and writes the document (``to_document``)
with where each of its locations is in the form.

Field names: ``mapping-id``, ``mapping-description``, ``mapping-applies-to``...;
``entries-2-target``, ``-kind`` (plain or spec), ``-from``, ``-transform``,
``-lookup``, ``-default``, ``-short`` (a bare path stays one) and ``-spec``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from engine.errors import PathError
from engine.hl7v2 import parse_path
from engine.model.canonical import canonical_paths
from engine.model.canonical_path import CanonicalPathError, parse_canonical_path
from engine.model.mapping import TRANSFORMS
from engine.rules.export import document_yaml
from engine.rules.field_catalog import Pickable, canonical_fields

PLAIN_KEYS = ("from", "transform", "lookup", "default")
# What each transform does, for the picker; the engine's list decides which exist.
_WORDS = {"datetime": "HL7 date/time to ISO 8601", "date": "HL7 date/time to a date",
          "number": "a number (kept as text, with an issue, when not one)",
          "boolean": "Y/N to true/false", "trim": "without surrounding spaces",
          "upper": "in capitals", "lower": "in small letters",
          "coding_system": "a coding system (text with spaces is left out)"}
TRANSFORM_WORDS = {name: _WORDS.get(name, "") for name in TRANSFORMS}
# The document's own keys the form shows, in the schema's order: (key, form key, a list).
HEAD = (("id", "mapping-id", False), ("description", "mapping-description", False),
        ("applies_to", "mapping-applies-to", True),
        ("requires_segment", "mapping-requires-segment", False),
        ("excludes_segment", "mapping-excludes-segment", False),
        ("covers", "mapping-covers", True))
_TARGET = re.compile(r"^[a-z_]+(\.[a-z_]+)*$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
Fields = Mapping[str, Sequence[str]]


@dataclass
class Entry:
    """One canonical target and how it is made: in cells (``plain``) or as YAML."""

    target: str = ""
    plain: bool = True
    source: str = ""
    transform: str = ""
    lookup: str = ""
    default: str = ""
    short: bool = True  # a bare path in the document; written back as one
    spec: str = ""


@dataclass
class MappingForm:
    head: dict[str, str] = field(default_factory=dict)  # form key -> text
    entries: list[Entry] = field(default_factory=list)


@cache
def mapping_targets() -> tuple[Pickable, ...]:
    """The canonical fields a mapping entry may fill: no path inside a list's items
    (those are an ``each``'s fields); a list is filled whole, named without ``[*]``."""
    return tuple(Pickable(p.path.removesuffix("[*]"), p.words) for p in canonical_fields()
                 if "[*]" not in p.path.removesuffix("[*]"))


def target_words(target: str) -> str:
    return next((p.words for p in mapping_targets() if p.path == target), "")


# ---- document -> form ------------------------------------------------------------------


def from_document(data: Mapping[str, Any]) -> MappingForm:
    head = {key: _head_text(data.get(name), many) for name, key, many in HEAD}
    return MappingForm(head, [_entry(str(target), spec)
                              for target, spec in (data.get("fields") or {}).items()])


def _head_text(value: Any, many: bool) -> str:
    if value is None:
        return ""
    return ", ".join(map(str, value)) if many and isinstance(value, list) else str(value)


def is_plain(spec: Any) -> bool:
    """Whether ``spec`` fits the cells: an absolute HL7 path, and text for the rest."""
    if isinstance(spec, str):
        return _absolute_path_problem(spec) is None
    return (isinstance(spec, Mapping) and "from" in spec and set(spec) <= set(PLAIN_KEYS)
            and all(isinstance(v, str) and v for k, v in spec.items() if k != "from")
            and isinstance(spec["from"], str) and _absolute_path_problem(spec["from"]) is None
            and spec.get("transform", TRANSFORMS[0]) in TRANSFORMS)


def _entry(target: str, spec: Any) -> Entry:
    if not is_plain(spec):
        return Entry(target, plain=False, spec=spec_text(spec))
    if isinstance(spec, str):
        return Entry(target, source=spec)
    return Entry(target, source=spec["from"], transform=spec.get("transform", ""),
                 lookup=spec.get("lookup", ""), default=spec.get("default", ""), short=False)


def spec_text(spec: Any) -> str:
    """A spec as the YAML its box shows (read back exactly)."""
    return document_yaml("(spec)", spec)


def summary(spec: Any) -> str:
    """A spec the cells cannot show, in a few words: ``each PID-3[*] → value, type``."""
    if not isinstance(spec, Mapping):
        return str(spec)
    if "each" in spec:
        each = spec["each"] if isinstance(spec["each"], str) else " + ".join(spec["each"])
        inner = (", ".join(map(str, spec["fields"])) if isinstance(spec.get("fields"), Mapping)
                 else summary(spec.get("value")))
        return f"each {each} → {inner}" + (f", joined by {spec['join']!r}" if "join" in spec
                                          else "")
    if "first_of" in spec:
        return "first of " + ", ".join(summary(option) for option in spec["first_of"] or ())
    if "cases" in spec:
        count = len(spec["cases"] or ())
        return f"{count} case{'s' if count != 1 else ''}: the first that holds"
    if "type_from" in spec:
        return f"{spec.get('from')} read as the type {spec['type_from']} names"
    if "value" in spec:
        return f"the constant {spec['value']!r}"
    return ", ".join(f"{key} {value}" for key, value in spec.items())


# ---- posted fields -> form -------------------------------------------------------------


def read_form(fields: Fields) -> MappingForm:
    """The form as posted (every value kept as typed, right or wrong)."""
    head = {key: _text(fields, key) if name == "description" else _one(fields, key)
            for name, key, _many in HEAD}
    entries: list[Entry] = []
    while f"entries-{len(entries)}-kind" in fields:
        key = f"entries-{len(entries)}"
        entries.append(Entry(
            _one(fields, f"{key}-target"), _one(fields, f"{key}-kind") != "spec",
            _one(fields, f"{key}-from"), _one(fields, f"{key}-transform"),
            _one(fields, f"{key}-lookup"), _text(fields, f"{key}-default"),
            _one(fields, f"{key}-short") == "1", _text(fields, f"{key}-spec")))
    return MappingForm(head, entries)


def _one(fields: Fields, name: str) -> str:
    return str((fields.get(name) or [""])[0]).strip()


def _text(fields: Fields, name: str) -> str:
    return str((fields.get(name) or [""])[0]).replace("\r\n", "\n")


# ---- the buttons -----------------------------------------------------------------------


def apply(form: MappingForm, action: str) -> MappingForm:
    """``form`` after the button ``action``: ``add-entry``, ``add-spec``,
    ``delete:entries-2`` or ``as-yaml:entries-2``; unknown ones do nothing."""
    verb, _, key = action.partition(":")
    found = re.fullmatch(r"entries-(\d+)", key)
    index = int(found.group(1)) if found else -1
    if verb == "add-entry":
        form.entries.append(Entry())
    elif verb == "add-spec":
        form.entries.append(Entry(plain=False))
    elif 0 <= index < len(form.entries) and verb == "delete":
        del form.entries[index]
    elif 0 <= index < len(form.entries) and verb == "as-yaml" and form.entries[index].plain:
        entry = form.entries[index]
        form.entries[index] = Entry(entry.target, plain=False,
                                    spec=spec_text({"from": entry.source, **_extras(entry)}))
    return form


def _extras(entry: Entry) -> dict[str, str]:
    return {key: value for key, value in (("transform", entry.transform),
                                          ("lookup", entry.lookup),
                                          ("default", entry.default)) if value}


# ---- form -> document ------------------------------------------------------------------


@dataclass
class Written:
    """The document a form says, the problems found in it as typed (form key ->
    problem), and each entry's target and kind, to place a finding by its location."""

    data: dict[str, Any]
    errors: dict[str, str]
    targets: list[tuple[str, bool]] = field(default_factory=list)

    def place(self, location: str) -> str:
        """The form key of a finding's ``location`` (``fields.patient.gender.lookup``)."""
        for name, key, _many in HEAD:
            if location == name or location.startswith((f"{name}[", f"{name}.")):
                return key
        rest = location.removeprefix("fields.") if location.startswith("fields.") else None
        if rest is None:
            return "mapping"
        index, tail = self._entry_of(rest)
        if index is None:
            return "mapping"
        plain = self.targets[index][1]
        part = tail.lstrip(".").split(".")[0].split("[")[0]
        if plain and part in PLAIN_KEYS:
            return f"entries-{index}-{part}"
        return f"entries-{index}" if not tail or plain else f"entries-{index}-spec"

    def _entry_of(self, rest: str) -> tuple[int | None, str]:
        """The entry whose target is the longest start of ``rest``, and what follows."""
        best: tuple[int | None, str] = (None, "")
        longest = -1
        for index, (target, _plain) in enumerate(self.targets):
            if (rest == target or rest.startswith((target + ".", target + "["))) \
                    and len(target) > longest:
                best, longest = (index, rest[len(target):]), len(target)
        return best


def to_document(form: MappingForm, complete: bool = True) -> Written:
    """The mapping ``form`` says. With ``complete`` false (while it is being filled in),
    a field left empty is not a problem yet; a value typed wrong always is."""
    written = Written({}, {})
    for name, key, many in HEAD:
        text = form.head.get(key, "")
        if text.strip() if name != "description" else text:
            written.data[name] = _items(text) if many else text
    if complete and not _ID.match(form.head.get("mapping-id", "")):
        written.errors["mapping-id"] = "Use lower-case letters, digits and hyphens, e.g. patient"
    fields: dict[str, Any] = {}
    for index, entry in enumerate(form.entries):
        spec = _spec(entry, f"entries-{index}", written.errors, complete)
        _check_target(entry.target, f"entries-{index}", fields, written.errors, complete)
        fields[entry.target] = spec
        written.targets.append((entry.target, entry.plain))
    written.data["fields"] = fields
    return written


def _items(text: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", text) if item]


def _check_target(target: str, key: str, fields: dict[str, Any], errors: dict[str, str],
                  complete: bool) -> None:
    if not target:
        if complete:
            errors[f"{key}-target"] = "Pick the canonical field this entry fills"
        return
    if target in fields:
        errors[f"{key}-target"] = (f"Another entry fills '{target}' already: change one of "
                                   "them, or delete this one")
    elif not _TARGET.match(target) or _unknown(target):
        errors[f"{key}-target"] = (f"'{target}' is not a field of the canonical record: "
                                   "pick one from the list, e.g. patient.gender")


def _unknown(target: str) -> bool:
    try:
        return parse_canonical_path(target) not in canonical_paths()
    except CanonicalPathError:
        return True


def _spec(entry: Entry, key: str, errors: dict[str, str], complete: bool) -> Any:
    if not entry.plain:
        return _yaml_spec(entry.spec, key, errors, complete)
    problem = _absolute_path_problem(entry.source) if entry.source else (
        "Type the HL7 field to read, e.g. PID-8" if complete else None)
    if problem:
        errors[f"{key}-from"] = problem
    if entry.transform and entry.transform not in TRANSFORMS:
        errors[f"{key}-transform"] = f"Choose one of: {', '.join(TRANSFORMS)}"
    extras = _extras(entry)
    if entry.short and not extras:
        return entry.source
    return {"from": entry.source, **extras}


def _absolute_path_problem(path: str) -> str | None:
    if not path or path[0] in ".-^>":
        return ("A path outside a list names its segment, e.g. PID-8; relative paths "
                "('.1', '-5') belong in an each")
    try:
        parse_path(path)
    except PathError as error:
        return f"Not an HL7 path ({error.reason}): write it as PID-8 or PID-5.1"
    return None


def _yaml_spec(text: str, key: str, errors: dict[str, str], complete: bool) -> Any:
    if not text.strip():
        if complete:
            errors[f"{key}-spec"] = ("Write how the value is made, e.g. each: OBX[*] with "
                                     "its fields; or delete the entry")
        return {}
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        errors[f"{key}-spec"] = (f"Not readable YAML ({where}"
                                 f"{getattr(error, 'problem', None) or error})")
        return {}
    if not isinstance(spec, (str, dict)):
        errors[f"{key}-spec"] = "Write an HL7 path, or keys and values such as each: and fields:"
    return spec
