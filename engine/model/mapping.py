"""Mapping: HL7 v2 -> canonical record, driven by mapping documents (data, not code).

A mapping document::

    id: patient
    applies_to: ["*"]            # "TYPE^EVENT" patterns; * matches anything
    requires_segment: PID        # optional
    fields:
      patient.birth_date: {from: PID-7, transform: date}
      patient.identifiers:
        each: PID-3[*]
        fields:
          value: .1
          assigning_authority: .4
          type: .5

A value spec takes ``from`` (an HL7 path), ``value`` (a constant), ``first_of`` (specs,
first non-empty wins), ``cases`` (``when``/value pairs, first that holds wins) or
``segment`` (where a segment is: ``'^'`` the parent's ``OBR[2]``, ``''`` the item's), then
``transform`` (datetime, date, number, trim, upper, lower, boolean, coding_system:
text with spaces is a description, not a coding system), ``lookup`` (a
table id) and ``default``. A string is short for ``{from: ...}``. ``{from: '-5',
type_from: '-2'}`` reads a whole field as the HL7 v2 data type another field names:
OBX-5 as its OBX-2 says, into the value shape of ``engine.model.observation_value``.
``each`` iterates an HL7 path with ``[*]``: with ``fields`` it builds a list of
objects, with ``value`` a list of scalars, and with ``join`` one string. Inside
``each`` a path may be relative:
``.4`` (component of the repetition), ``-5`` (field of the segment), ``^-2`` (field
of the nearest preceding ``parent`` segment), or empty (the item itself).

Compilation checks every path and table once; conversion never parses rule text.
Problems with the data become issues that name HL7 paths, never values (PHI).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import SwitchboardError
from engine.hl7v2 import Message, parse_path
from engine.model.coding_system import NOT_A_CODING_SYSTEM, is_coding_system
from engine.model.concept_map import LookupTable
from engine.model.hl7_time import TimeFormatError, hl7_to_iso, iso_date_part
from engine.model.observation_value import NOT_A_NUMBER, observation_value, parse_number

TOP_LEVEL_LISTS = ("orders", "results", "appointments", "referrals", "documents", "tasks")
TOP_LEVEL_OBJECTS = ("message", "patient", "encounter", "merge")


class MappingError(SwitchboardError):
    """A mapping document is not valid; the message names the document and key."""


@dataclass(frozen=True)
class Issue:
    """A data problem found while converting: where, and what, never the value."""

    source: str
    target: str
    problem: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}: {self.problem}"


@dataclass
class _Context:
    message: Message
    issues: list[Issue]
    base: str = ""
    parent: str = ""
    child: str = ""
    target: str = ""


Getter = Callable[[_Context], Any]
Tables = Mapping[str, LookupTable]


@dataclass(frozen=True)
class CompiledMapping:
    id: str
    applies_to: tuple[tuple[str, str], ...]
    requires_segment: str | None
    excludes_segment: str | None
    fields: tuple[tuple[tuple[str, ...], Getter], ...]
    targets: tuple[str, ...] = ()  # each field's target as text, for issues

    def __post_init__(self) -> None:
        if not self.targets:
            object.__setattr__(self, "targets", tuple(".".join(t) for t, _ in self.fields))

    def applies(self, message_type: str, event: str, message: Message) -> bool:
        ids = message.segment_ids
        if self.requires_segment and self.requires_segment not in ids:
            return False
        if self.excludes_segment and self.excludes_segment in ids:
            return False
        return any(
            t in ("*", message_type) and e in ("*", event) for t, e in self.applies_to
        )


@dataclass(frozen=True)
class Conversion:
    record: dict[str, Any]
    issues: tuple[Issue, ...]
    covered: bool
    mappings: tuple[str, ...] = field(default=())


class Mapper:
    """An immutable set of compiled mappings plus the message types they cover."""

    def __init__(
        self,
        documents: Sequence[Mapping[str, Any]],
        tables: Tables,
        covers: Sequence[str] = (),
    ) -> None:
        self._tables = dict(tables)
        self.mappings = tuple(_compile_document(doc, self._tables) for doc in documents)
        self.covers = frozenset(covers)

    def is_covered(self, message_type: str, event: str) -> bool:
        return f"{message_type}^{event}" in self.covers

    def convert(self, message: Message) -> Conversion:
        record: dict[str, Any] = {key: {} for key in TOP_LEVEL_OBJECTS}
        record.update({key: [] for key in TOP_LEVEL_LISTS})
        message_type, event = message.message_type, message.trigger_event
        issues: list[Issue] = []
        used = []
        # One context for the top-level fields: getters only read it (an ``each``
        # makes its own per item), and building one per field cost more than reading.
        context = _Context(message, issues)
        for mapping in self.mappings:
            if not mapping.applies(message_type, event, message):
                continue
            used.append(mapping.id)
            for (target, getter), text in zip(mapping.fields, mapping.targets, strict=True):
                context.target = text
                value = getter(context)
                if not _is_empty(value):
                    _assign(record, target, value)
        return Conversion(
            record, tuple(issues), self.is_covered(message_type, event), tuple(used)
        )


def _assign(record: dict[str, Any], target: tuple[str, ...], value: Any) -> None:
    node = record
    for key in target[:-1]:
        node = node.setdefault(key, {})
    node[target[-1]] = value


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# ---- compilation ---------------------------------------------------------------------


def _compile_document(doc: Mapping[str, Any], tables: Tables) -> CompiledMapping:
    doc_id = str(doc.get("id", "?"))
    patterns = []
    for pattern in doc.get("applies_to", ["*"]):
        message_type, _, event = str(pattern).partition("^")
        patterns.append((message_type, event or "*"))
    fields = tuple(
        (tuple(str(target).split(".")), _compile_spec(spec, tables, f"{doc_id}: fields.{target}"))
        for target, spec in doc.get("fields", {}).items()
    )
    return CompiledMapping(
        doc_id, tuple(patterns), doc.get("requires_segment"), doc.get("excludes_segment"), fields
    )


def _compile_spec(spec: Any, tables: Tables, where: str) -> Getter:
    if isinstance(spec, str):
        spec = {"from": spec}
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        raise MappingError(
            f"{where}: {spec!r} is a number; YAML reads .1 and -5 as numbers, so write "
            "relative HL7 paths in quotes: '.1', '-5'"
        )
    if not isinstance(spec, Mapping):
        raise MappingError(f"{where}: expected a path or a mapping spec, got {spec!r}")
    if "each" in spec:
        return _compile_each(spec, tables, where)
    if "type_from" in spec:
        return _compile_typed(spec, where)
    return _compile_value(spec, tables, where)


def _compile_value(spec: Mapping[str, Any], tables: Tables, where: str) -> Getter:
    source = _compile_source(spec, tables, where)
    steps = [_compile_transform(name, where) for name in _as_list(spec.get("transform"))]
    if "lookup" in spec:
        steps.append(_compile_lookup(str(spec["lookup"]), tables, where))
    default = spec.get("default")
    if "from" in spec and not steps and default is None:
        # Most specs are a bare path: read it straight, with no issue bookkeeping,
        # since nothing here can raise one. Mapping is most of the pipeline's time.
        return _compile_plain_path(str(spec["from"]))

    def get(context: _Context) -> Any:
        raw = source(context)
        value: Any = raw[1] if raw else None
        for step in steps:
            if _is_empty(value):
                break
            value = step(value, raw[0] if raw else "", context)
        return default if _is_empty(value) and default is not None else value

    return get


Source = Callable[[_Context], "tuple[str, Any] | None"]


def _compile_source(spec: Mapping[str, Any], tables: Tables, where: str) -> Source:
    """The raw value and the concrete HL7 path it came from (for issues)."""
    if "from" in spec:
        return _compile_path(str(spec["from"]), where)
    if "value" in spec:
        constant = spec["value"]
        return lambda context: ("(constant)", constant)
    if "first_of" in spec:
        options = [
            _compile_spec(option, tables, f"{where}.first_of[{index}]")
            for index, option in enumerate(spec["first_of"])
        ]
        return lambda context: _first_of(options, context)
    if "cases" in spec:
        return _compile_cases(spec["cases"], tables, where)
    if "segment" in spec:
        return _compile_segment(str(spec["segment"]), where)
    raise MappingError(f"{where}: give one of from, value, first_of, cases, segment or each")


def _compile_segment(path: str, where: str) -> Source:
    """``{segment: '^'}``: where the parent segment is in the message (``OBR[2]``);
    ``'>'`` the child's, ``''`` the item's own. Items link to each other by it."""
    kind, rest = _path_kind(path)
    if rest:
        raise MappingError(f"{where}: segment takes '^' (the parent), '>' (the child) "
                           "or '' (the item itself), not a field")

    def place(context: _Context) -> tuple[str, Any] | None:
        found = {"parent": context.parent, "child": context.child}.get(kind, context.base)
        return ("(segment)", found) if found and "-" not in found else None

    return place


def _first_of(options: list[Getter], context: _Context) -> tuple[str, Any] | None:
    for option in options:
        value = option(context)
        if not _is_empty(value):
            return ("(first_of)", value)
    return None


def _compile_cases(cases: Any, tables: Tables, where: str) -> Source:
    compiled = []
    for index, case in enumerate(cases):
        case_where = f"{where}.cases[{index}]"
        test = _compile_when(case.get("when"), case_where) if "when" in case else None
        body = {k: v for k, v in case.items() if k != "when"}
        compiled.append((test, _compile_spec(body, tables, case_where)))

    def pick(context: _Context) -> tuple[str, Any] | None:
        for test, getter in compiled:
            if test is None or test(context):
                value = getter(context)
                return None if _is_empty(value) else ("(case)", value)
        return None

    return pick


def _compile_when(when: Any, where: str) -> Callable[[_Context], bool]:
    if not isinstance(when, Mapping) or "from" not in when:
        raise MappingError(f"{where}.when: give {{from: PATH, eq|in|exists: ...}}")
    read = _compile_path(str(when["from"]), f"{where}.when")

    def value(context: _Context) -> Any:
        found = read(context)
        return found[1] if found else None

    if "eq" in when:
        expected = str(when["eq"])
        return lambda context: value(context) == expected
    if "in" in when:
        allowed = {str(v) for v in when["in"]}
        return lambda context: value(context) in allowed
    if "exists" in when:
        wanted = bool(when["exists"])
        return lambda context: (not _is_empty(value(context))) is wanted
    raise MappingError(f"{where}.when: give one of eq, in or exists")


def _compile_path(path: str, where: str) -> Source:
    kind, rest = _path_kind(path)
    if kind == "absolute":
        try:
            parse_path(rest)
        except SwitchboardError as exc:
            raise MappingError(f"{where}: {exc}") from None
    return lambda context: _read(context, kind, rest)


def _compile_plain_path(path: str) -> Getter:
    """A getter for the value at ``path`` (already checked by _compile_path)."""
    kind, rest = _path_kind(path)
    if kind == "absolute":
        return lambda context: context.message.get(rest)
    if kind == "parent":
        return lambda context: (
            context.message.get(context.parent + rest) if context.parent else None)
    if kind == "child":
        return lambda context: (
            context.message.get(context.child + rest) if context.child else None)
    return lambda context: context.message.get(context.base + rest)


def _path_kind(path: str) -> tuple[str, str]:
    if path == "":
        return "item", ""
    if path.startswith("^"):
        return "parent", path[1:]
    if path.startswith(">"):
        return "child", path[1:]
    if path[0] in ".-":
        return "relative", path
    return "absolute", path


def _read(context: _Context, kind: str, rest: str) -> tuple[str, Any] | None:
    concrete = _concrete(context, kind, rest)
    if concrete is None:
        return None
    value = context.message.get(concrete)
    return None if value is None else (concrete, value)


def _concrete(context: _Context, kind: str, rest: str) -> str | None:
    """The concrete HL7 path a spec's path names here; None without its segment."""
    if kind == "absolute":
        return rest
    if kind in ("parent", "child"):
        related = context.parent if kind == "parent" else context.child
        return related + rest if related else None
    return context.base + rest


# A whole field: SEG-n, SEG[k]-n, or relative -n (^-n, >-n).
_FIELD_PATH = re.compile(r"[\^>]?([A-Z][A-Z0-9]{2}(\[\d+\])?)?-\d+")


def _compile_typed(spec: Mapping[str, Any], where: str) -> Getter:
    """``{from: FIELD, type_from: PATH}``: every repetition and component of FIELD, read
    as the data type at PATH (OBX-5 by OBX-2)."""
    extra = sorted(set(spec) - {"from", "type_from"})
    if extra:
        raise MappingError(f"{where}: type_from reads one field as it is; "
                           f"it takes no {', '.join(extra)}")
    path = str(spec.get("from", ""))
    if _FIELD_PATH.fullmatch(path) is None:
        raise MappingError(f"{where}: type_from needs from to name a whole field, "
                           "such as '-5' or 'OBX-5'")
    _compile_path(path, where)
    kind, rest = _path_kind(path)
    read_type = _compile_path(str(spec["type_from"]), f"{where}.type_from")

    def get(context: _Context) -> Any:
        concrete = _concrete(context, kind, rest)
        if concrete is None:
            return None
        found = read_type(context)
        type_code = str(found[1]).strip() if found else ""
        value, problems = observation_value(type_code, _FieldAt(context.message, concrete))
        context.issues.extend(Issue(concrete, context.target, problem) for problem in problems)
        return value

    return get


class _FieldAt:
    """One concrete field of the message, as observation_value reads it."""

    __slots__ = ("message", "path")

    def __init__(self, message: Message, path: str) -> None:
        self.message = message
        self.path = path

    def repetitions(self) -> int:
        return len(self.message.get_all(self.path + "[*]", raw=True))

    def component(self, repetition: int, component: int) -> str:
        return self.message.get(f"{self.path}[{repetition}].{component}") or ""


def _compile_transform(name: str, where: str) -> Callable[[Any, str, _Context], Any]:
    transform = _TRANSFORMS.get(name)
    if transform is None:
        raise MappingError(
            f"{where}: unknown transform {name!r}; use one of {', '.join(sorted(_TRANSFORMS))}"
        )
    return transform


def _compile_lookup(
    table_id: str, tables: Tables, where: str
) -> Callable[[Any, str, _Context], Any]:
    table = tables.get(table_id)
    if table is None:
        raise MappingError(f"{where}: no lookup table {table_id!r}")

    def look_up(value: Any, source: str, context: _Context) -> Any:
        found = table.get(str(value))
        if found is None:
            context.issues.append(
                Issue(source, context.target, f"code is not in lookup table {table_id}")
            )
        return found

    return look_up


def _datetime(value: Any, source: str, context: _Context) -> Any:
    try:
        return hl7_to_iso(str(value))
    except TimeFormatError:
        context.issues.append(Issue(source, context.target, "not a valid HL7 date/time"))
        return None


def _date(value: Any, source: str, context: _Context) -> Any:
    iso = _datetime(value, source, context)
    return None if iso is None else iso_date_part(iso)


def _number(value: Any, source: str, context: _Context) -> Any:
    number = parse_number(str(value))
    if number is None:
        context.issues.append(Issue(source, context.target, NOT_A_NUMBER))
        return str(value).strip()
    return number


def _coding_system(value: Any, source: str, context: _Context) -> Any:
    if is_coding_system(str(value)):
        return value
    context.issues.append(Issue(source, context.target, NOT_A_CODING_SYSTEM))
    return None


def _boolean(value: Any, source: str, context: _Context) -> Any:
    text = str(value).strip().upper()
    if text in ("Y", "YES", "TRUE", "T", "1"):
        return True
    if text in ("N", "NO", "FALSE", "F", "0"):
        return False
    context.issues.append(Issue(source, context.target, "not a Y/N indicator"))
    return None


_TRANSFORMS: dict[str, Callable[[Any, str, _Context], Any]] = {
    "datetime": _datetime,
    "date": _date,
    "number": _number,
    "boolean": _boolean,
    "coding_system": _coding_system,
    "trim": lambda value, source, context: str(value).strip(),
    "upper": lambda value, source, context: str(value).upper(),
    "lower": lambda value, source, context: str(value).lower(),
}
# The transforms a spec may name, for editors that offer them.
TRANSFORMS = tuple(_TRANSFORMS)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# ---- iteration ---------------------------------------------------------------------------


def _compile_each(spec: Mapping[str, Any], tables: Tables, where: str) -> Getter:
    sources = [_each_source(str(path), where) for path in _as_list(spec["each"])]
    parent, child = spec.get("parent"), spec.get("child")
    if "fields" in spec:
        item = _compile_fields(spec["fields"], tables, where)
    elif "value" in spec:
        item = _compile_spec(spec["value"], tables, f"{where}.value")
    else:
        raise MappingError(f"{where}: each needs fields (objects) or value (scalars)")
    join = spec.get("join")

    def get(context: _Context) -> Any:
        values = []
        for kind, stem in sources:
            base = stem if kind == "absolute" else context.base + stem
            for index, item_base in enumerate(_item_bases(context.message, base), start=1):
                parent_base, child_base = _related(context.message, base, index, parent, child)
                scope = _Context(
                    context.message, context.issues, item_base, parent_base, child_base,
                    context.target,
                )
                value = item(scope)
                if not _is_empty(value):
                    values.append(value)
        if join is not None:
            return str(join).join(str(v) for v in values) if values else None
        return values

    return get


def _each_source(each: str, where: str) -> tuple[str, str]:
    if not each.endswith("[*]"):
        raise MappingError(f"{where}: each needs a path ending in [*], e.g. PID-3[*] or OBX[*]")
    kind, rest = _path_kind(each)
    if kind in ("parent", "child"):
        raise MappingError(f"{where}: each cannot start from a parent or child segment")
    if kind == "absolute":
        try:
            parse_path(rest)
        except SwitchboardError as exc:
            raise MappingError(f"{where}: {exc}") from None
    return kind, rest[:-3]


def _compile_fields(
    fields: Mapping[str, Any], tables: Tables, where: str
) -> Getter:
    compiled = [
        (tuple(str(key).split(".")), "[*]." + str(key),
         _compile_spec(spec, tables, f"{where}.fields.{key}"))
        for key, spec in fields.items()
    ]

    def build(context: _Context) -> Any:
        item: dict[str, Any] = {}
        list_target = context.target
        for target, suffix, getter in compiled:
            # Issues name the field they are about: results[*].status, not results.
            context.target = list_target + suffix
            value = getter(context)
            if not _is_empty(value):
                _assign(item, target, value)
        context.target = list_target
        return item

    return build


def _item_bases(message: Message, stem: str) -> list[str]:
    """Concrete paths of every item of ``stem[*]``: ``OBX[1]``.. or ``PID-3[1]``.."""
    count = len(message.get_all(stem + "[*]", raw=True))
    return [f"{stem}[{n}]" for n in range(1, count + 1)]


def _related(
    message: Message, stem: str, occurrence: int, parent: Any, child: Any
) -> tuple[str, str]:
    """For occurrence ``occurrence`` of segment ``stem``: the nearest ``parent`` segment
    before it and the first ``child`` segment after it (before the next ``stem``), as
    ``SEG[k]`` paths ('' when there is none). Only segment iterations have relatives."""
    if "-" in stem or not (parent or child):
        return "", ""
    ids = message.segment_ids
    seen = parents = children = 0
    parent_path = child_path = ""
    in_item = False
    for segment_id in ids:
        if segment_id == stem:
            if in_item:
                break
            seen += 1
            if seen == occurrence:
                in_item = True
                parent_path = f"{parent}[{parents}]" if parent and parents else ""
        elif segment_id == parent:
            parents += 1
        if segment_id == child:
            children += 1
            if in_item and not child_path:
                child_path = f"{child}[{children}]"
    return parent_path, child_path
