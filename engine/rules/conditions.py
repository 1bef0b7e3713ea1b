"""Route conditions: parsed once into a tree a linter can read, then compiled.

A condition is ``{all: [...]}``, ``{any: [...]}``, ``{not: ...}``, a scope
(``{some: {of: LIST, where: ...}}`` or ``{every: ...}``) or a leaf that reads values from
the canonical record (``field``) or the raw HL7 message (``hl7``) and tests them with one
operator. Three evaluators share the operator semantics defined here:

* :func:`evaluate_condition` interprets the tree with ``values_at``. It is the oracle
  the others are tested against, and the only one that records :class:`Evidence`.
* :func:`compile_condition` builds a closure over generated leaf functions: each leaf
  walks the record with nested loops and stops at the first value that decides.
* ``SourceWriter`` (in :mod:`engine.rules.condition_codegen`) writes Python expressions
  for many rows at once (the route table's generated code): each path's key and each
  leaf's verdict is computed at most once per message and shared by every row, and
  eq/in on scalar paths are inlined.

Semantics, per leaf (the values are what the path reads, ``None`` and absent skipped):

* ``eq ne in not_in`` compare text keys: a string is itself, ``true``/``false`` for
  booleans, a number its shortest text (``5``, ``5.0`` and ``'5'`` are equal, as JSON
  writes numbers), so equality is transitive and can be indexed. Lists and objects equal
  nothing.
* ``matches`` is ``re.search`` (anchor with ``^``/``$``) on the text key.
* ``lt le gt ge`` compare numbers when both sides are numbers or numeric strings, else
  ISO 8601 dates/datetimes read from the text keys, chronologically (a partial date is
  its first instant, and the number 2024 is the year 2024). When one side has a UTC
  offset and the other not, the wall-clock times are compared. Anything else is not
  comparable, and the test is False.
* ``exists`` holds when some value is not ``''``; ``missing`` when none is.
* quantifier ``any`` (default): some value passes; ``all``: there is at least one value
  and every value passes. A leaf with no values is False, except ``missing``.

Scopes test one item of a list at a time, so that "a potassium result flagged HH" means
the same result: ``of`` is a canonical list path with one ``[*]``, at its end
(``results[*]``), and ``where`` a condition whose field paths are relative to the item
(``code``, ``abnormal_flags[*]``). ``some`` holds when some item satisfies ``where``;
``every`` when there is at least one item and every item does (as quantifier ``all``).
Absent and None items are not items. Inside ``where`` only ``field`` leaves are allowed,
and no other scope: the item is not an HL7 segment, and one level says what analysts ask.

Conditions are pure and never raise on any record, so evaluators may skip, share and
reorder the tests as they like.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, TypeAlias

from engine.errors import PathError, SwitchboardError
from engine.hl7v2 import Message, parse_path
from engine.model.canonical_path import (
    EVERY,
    CanonicalPathError,
    parse_canonical_path,
    values_at,
)

OPS = ("eq", "ne", "in", "not_in", "matches", "exists", "missing", "lt", "le", "gt", "ge")
QUANTIFIERS = ("any", "all")
_PRESENCE_OPS = ("exists", "missing")
_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}

Predicate: TypeAlias = Callable[[Mapping[str, Any], Message | None], bool]
ValueTest: TypeAlias = Callable[[Any], bool]


class RuleError(SwitchboardError):
    """A route table is well formed but cannot be compiled: a bad regex, an unknown
    operator, a duplicate row id. Names the table, the row and what to fix."""

    def __init__(self, problem: str, *, where: str = "", hint: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem, hint=hint)


# ---- the parsed tree ---------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """What one leaf saw when a row was explained: why it fired. A leaf inside a scope
    names it (``scope``, ``results[*]``) and the position of the item it read in that
    list (``item``); ``item`` None there means the list had no items to read."""

    source: Literal["field", "hl7"]
    path: str
    op: str
    quantifier: str
    expected: Any
    seen: tuple[Any, ...]
    held: bool
    scope: str | None = None
    item: int | None = None

    @property
    def place(self) -> str:
        """Where the values were read: ``results[2].abnormal_flags[*]`` in a scope."""
        if self.scope is None:
            return self.path
        items = self.scope if self.item is None else f"{self.scope[:-3]}[{self.item}]"
        return f"{items}.{self.path}"


@dataclass(frozen=True)
class Leaf:
    """One test: ``op`` applied to the values at ``path``. ``value`` is the expected value
    as written (a tuple for ``in``/``not_in``, None for ``exists``/``missing``)."""

    source: Literal["field", "hl7"]
    path: str
    op: str
    value: Any
    quantifier: Literal["any", "all"]
    steps: tuple[str, ...] = ()
    test: ValueTest = field(default=bool, compare=False, repr=False)

    @property
    def is_scalar(self) -> bool:
        """True when the path reads at most one value (a canonical path without [*])."""
        return self.source == "field" and EVERY not in self.steps

    def read(self, record: Mapping[str, Any], message: Message | None) -> list[Any]:
        """The values the leaf tests, read the plain way (the oracle's reader)."""
        if self.source == "field":
            return values_at(record, self.steps)
        if message is None:
            return []
        if parse_path(self.path).has_wildcard:
            return list(message.get_all(self.path))
        value = message.get(self.path)
        return [] if value is None else [value]

    def holds(self, values: Sequence[Any]) -> bool:
        """The leaf's verdict on ``values``: presence ops, then the quantifier."""
        if self.op == "exists":
            return any(value != "" for value in values)
        if self.op == "missing":
            return all(value == "" for value in values)
        if self.quantifier == "all":
            return bool(values) and all(self.test(value) for value in values)
        return any(self.test(value) for value in values)


@dataclass(frozen=True)
class AllOf:
    children: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    child: Condition


@dataclass(frozen=True)
class Scope:
    """``some``/``every`` item of the list at ``of`` satisfies ``where``, whose field
    paths are relative to the item. ``steps`` are those of ``of``, ending in EVERY."""

    kind: Literal["some", "every"]
    of: str
    steps: tuple[str, ...]
    where: Condition

    def items(self, record: Mapping[str, Any]) -> list[tuple[int, Any]]:
        """The list's items with their positions, None items left out."""
        found = values_at(record, self.steps[:-1])
        if not found or not isinstance(found[0], list):
            return []
        return [(index, item) for index, item in enumerate(found[0]) if item is not None]


Condition: TypeAlias = Leaf | AllOf | AnyOf | Not | Scope
SCOPES: tuple[Literal["some", "every"], ...] = ("some", "every")


def leaves(condition: Condition | None) -> list[Leaf]:
    """Every leaf under ``condition``, in document order (a scope's relative to its
    items)."""
    if condition is None:
        return []
    if isinstance(condition, Leaf):
        return [condition]
    if isinstance(condition, Not):
        return leaves(condition.child)
    if isinstance(condition, Scope):
        return leaves(condition.where)
    return [leaf for child in condition.children for leaf in leaves(child)]


# ---- value semantics -----------------------------------------------------------------


def text_key(value: Any) -> str | None:
    """The text eq/in compare: None for values that equal nothing (lists, objects)."""
    cls = value.__class__
    if cls is str:
        return value  # type: ignore[no-any-return]
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return _int_text(value)
    if cls is float:
        return _float_text(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _float_text(float(value)) if isinstance(value, float) else _int_text(int(value))
    return None


def _int_text(value: int) -> str | None:
    try:
        return str(value)
    except ValueError:  # past Python's limit on int-to-text digits: equals nothing
        return None


def _float_text(value: float) -> str:
    """Integral floats lose their ``.0`` so that 5 and 5.0 share one key, as in JSON."""
    if value.is_integer():
        return str(int(value))
    return repr(value)


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_MOMENT = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?"
)


def as_number(value: Any) -> int | float | None:
    """A number, or a numeric string read as one; None otherwise (booleans included)."""
    cls = value.__class__
    if cls is int or cls is float:
        return value  # type: ignore[no-any-return]
    return orderable_text(value)[0] if cls is str else None


@dataclass(frozen=True)
class Moment:
    """A point in time read from ISO 8601: its wall clock, and the instant when it has
    a UTC offset (then comparable across offsets)."""

    wall: datetime
    instant: datetime | None


def as_moment(value: Any) -> Moment | None:
    """An ISO 8601 date or datetime as a Moment; None when the value is not one."""
    return orderable_text(value)[1] if value.__class__ is str else None


_ORDERABLE: dict[str, tuple[int | float | None, Moment | None]] = {}
_ORDERABLE_LIMIT = 65536


def orderable_text(text: str) -> tuple[int | float | None, Moment | None]:
    """``text`` read as a number and as a moment (either may be None). Memoised: the
    same timestamps and values recur across rows and messages."""
    found = _ORDERABLE.get(text)
    if found is None:
        if len(_ORDERABLE) >= _ORDERABLE_LIMIT:
            _ORDERABLE.clear()
        found = _ORDERABLE[text] = (_number_text(text), _moment_text(text))
    return found


def _number_text(text: str) -> int | float | None:
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        return None
    try:
        return int(stripped)
    except ValueError:
        return float(stripped)


def _moment_text(text: str) -> Moment | None:
    match = _MOMENT.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        wall = datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
            int(second or 0), int((fraction or "0")[:6].ljust(6, "0")),
        )
        return Moment(wall, _instant(wall, offset))
    except ValueError:  # month 13, Feb 30, offset +25:00: not a date at all
        return None


def _instant(wall: datetime, offset: str | None) -> datetime | None:
    if offset is None:
        return None
    if offset == "Z":
        return wall.replace(tzinfo=UTC)
    digits = offset[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return wall.replace(tzinfo=timezone(-delta if offset[0] == "-" else delta))


# ---- parsing ---------------------------------------------------------------------------


def parse_condition(data: Any, where: str, location: str = "when") -> Condition:
    """The tree of ``data``; RuleError names ``where`` (table and row) and ``location``."""
    return _parse(data, where, location, None)


def _parse(data: Any, where: str, location: str, scope: str | None) -> Condition:
    """``scope``: the list path whose items the condition tests, inside a scope."""
    if not isinstance(data, Mapping):
        raise RuleError(f"{location}: a condition must be a mapping, not {data!r}", where=where)
    for combinator in ("all", "any"):
        if combinator in data:
            _only_keys(data, {combinator}, where, location)
            return _combination(combinator, data[combinator], where, location, scope)
    if "not" in data:
        _only_keys(data, {"not"}, where, location)
        return Not(_parse(data["not"], where, f"{location}.not", scope))
    for kind in SCOPES:
        if kind in data:
            _only_keys(data, {kind}, where, location)
            return _scope(kind, data[kind], where, f"{location}.{kind}", scope)
    if "field" in data or "hl7" in data:
        return _leaf(data, where, location, scope)
    raise RuleError(
        f"{location}: not a condition (keys {sorted(map(str, data))})", where=where,
        hint="Write {all: [...]}, {any: [...]}, {not: ...}, {some: {of: ..., where: ...}}, "
        "or a leaf with field or hl7",
    )


def _only_keys(data: Mapping[str, Any], allowed: set[str], where: str, location: str) -> None:
    extra = sorted(str(key) for key in data if key not in allowed)
    if extra:
        raise RuleError(f"{location}: unexpected keys {extra}", where=where)


def _combination(kind: str, items: Any, where: str, location: str,
                 scope: str | None) -> Condition:
    if not isinstance(items, list) or not items:
        raise RuleError(f"{location}.{kind}: needs a non-empty list of conditions", where=where)
    children = tuple(
        _parse(item, where, f"{location}.{kind}[{index}]", scope)
        for index, item in enumerate(items)
    )
    return AllOf(children) if kind == "all" else AnyOf(children)


def _scope(kind: Literal["some", "every"], data: Any, where: str, location: str,
           outer: str | None) -> Scope:
    if outer is not None:
        raise RuleError(
            f"{location}: a scope inside the scope of {outer} is not supported", where=where,
            hint="Test the inner list with a relative path instead, "
            "e.g. {field: abnormal_flags[*], op: in, value: [HH, LL]}",
        )
    if not isinstance(data, Mapping) or "of" not in data or "where" not in data:
        raise RuleError(f"{location}: write {{of: LIST, where: CONDITION}}", where=where,
                        hint="e.g. {of: results[*], where: {field: code, op: eq, value: K}}")
    _only_keys(data, {"of", "where"}, where, location)
    steps = _list_steps(data["of"], where, f"{location}.of")
    return Scope(kind, data["of"], steps,
                 _parse(data["where"], where, f"{location}.where", data["of"]))


def _list_steps(path: Any, where: str, location: str) -> tuple[str, ...]:
    """The steps of a scope's list: a canonical path with one [*], at its end."""
    steps = _path_steps("field", path, where, location)
    if steps[-1] != EVERY or steps.count(EVERY) != 1:
        raise RuleError(
            f"{location}: {path!r} is not a list path with one [*], at its end", where=where,
            hint="Name the list whose items to test, e.g. results[*] or "
            "patient.identifiers[*]",
        )
    return steps


def _leaf(data: Mapping[str, Any], where: str, location: str, scope: str | None) -> Leaf:
    _only_keys(data, {"field", "hl7", "op", "value", "quantifier"}, where, location)
    if "field" in data and "hl7" in data:
        raise RuleError(f"{location}: a leaf reads either field or hl7, not both", where=where)
    if "hl7" in data and scope is not None:
        raise RuleError(
            f"{location}.hl7: a scope over {scope} tests its items' fields, not HL7", where=where,
            hint="Use field with a path relative to the item (code, abnormal_flags[*]), "
            "or move the hl7 leaf out of the scope",
        )
    op = data.get("op")
    if op not in OPS:
        raise RuleError(
            f"{location}.op: unknown operator {op!r}", where=where,
            hint=f"Use one of {', '.join(OPS)}",
        )
    quantifier = data.get("quantifier", "any")
    if quantifier not in QUANTIFIERS:
        raise RuleError(f"{location}.quantifier: {quantifier!r} is not any or all", where=where)
    source: Literal["field", "hl7"] = "field" if "field" in data else "hl7"
    path = data[source]
    steps = _path_steps(source, path, where, f"{location}.{source}")
    value = _expected(op, data, where, location)
    test = _value_test(op, value, where, location)
    return Leaf(source, path, op, value, quantifier, steps, test)


def _path_steps(source: str, path: Any, where: str, location: str) -> tuple[str, ...]:
    try:
        if source == "field":
            return parse_canonical_path(path)
        parsed = parse_path(path)
    except (CanonicalPathError, PathError) as exc:
        raise RuleError(f"{location}: {exc}", where=where) from None
    if parsed.field is None:
        raise RuleError(
            f"{location}: {path!r} names a whole segment", where=where,
            hint="Name a field, e.g. OBX[*]-8 or PID-3.1",
        )
    return ()


def _expected(op: str, data: Mapping[str, Any], where: str, location: str) -> Any:
    """The expected value, checked for the operator: a tuple for in/not_in."""
    if op in _PRESENCE_OPS:
        if "value" in data or "quantifier" in data:
            raise RuleError(f"{location}: {op} takes no value and no quantifier", where=where)
        return None
    if "value" not in data:
        raise RuleError(f"{location}: {op} needs a value", where=where)
    value = data["value"]
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise RuleError(f"{location}.value: {op} needs a non-empty list", where=where)
        for index, item in enumerate(value):
            _scalar(item, where, f"{location}.value[{index}]")
        return tuple(value)
    if op == "matches" and not isinstance(value, str):
        raise RuleError(f"{location}.value: matches needs a regex string", where=where)
    _scalar(value, where, f"{location}.value")
    return value


def _scalar(value: Any, where: str, location: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise RuleError(f"{location}: {value!r} is not a usable number", where=where)
    if text_key(value) is None:
        raise RuleError(
            f"{location}: {value!r} is not a string, number or boolean", where=where,
        )


def _value_test(op: str, value: Any, where: str, location: str) -> ValueTest:
    """The per-value test of a leaf, with everything about ``value`` prepared now."""
    if op in ("eq", "ne"):
        test = _equals(text_key(value))
        return test if op == "eq" else _negate(test)
    if op in ("in", "not_in"):
        test = _member(frozenset(text_key(item) for item in value))
        return test if op == "in" else _negate(test)
    if op == "matches":
        return _matches(_regex(value, where, location))
    if op in _ORDER_OPS:
        return _ordering(_ORDER_OPS[op], value, where, location)
    return bool  # exists/missing read presence, not values


def _equals(key: str | None) -> ValueTest:
    def test(value: Any) -> bool:
        return (value if value.__class__ is str else text_key(value)) == key
    return test


def _member(keys: frozenset[str | None]) -> ValueTest:
    def test(value: Any) -> bool:
        key = value if value.__class__ is str else text_key(value)
        return key is not None and key in keys
    return test


def _negate(test: ValueTest) -> ValueTest:
    def negated(value: Any) -> bool:
        return not test(value)
    return negated


def _regex(pattern: str, where: str, location: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise RuleError(
            f"{location}.value: bad regex {pattern!r}: {exc}", where=where,
            hint="Write a Python regular expression (re module syntax)",
        ) from None


def _matches(regex: re.Pattern[str]) -> ValueTest:
    search = regex.search

    def test(value: Any) -> bool:
        text = value if value.__class__ is str else text_key(value)
        return text is not None and search(text) is not None
    return test


def _ordering(
    compare: Callable[[Any, Any], bool], value: Any, where: str, location: str
) -> ValueTest:
    """The test for lt/le/gt/ge, specialised for what the rule's value can be read as:
    it runs once per value on the hot path."""
    number = None if isinstance(value, bool) else as_number(value)
    moment = as_moment(text_key(value))  # the number 2024 is also the year 2024
    if number is None and moment is None:
        raise RuleError(
            f"{location}.value: {value!r} is neither a number nor an ISO 8601 date",
            where=where, hint="Compare with a number (7.5) or a date (2024-01-31)",
        )
    if moment is None:
        return _numeric_test(compare, number)
    return _moment_test(compare, moment, number)


def _numeric_test(compare: Callable[[Any, Any], bool], number: Any) -> ValueTest:
    def test(found: Any) -> bool:
        cls = found.__class__
        if cls is int or cls is float:
            return compare(found, number)
        if cls is str:
            mine = (_ORDERABLE.get(found) or orderable_text(found))[0]
            return mine is not None and compare(mine, number)
        return False
    return test


def _moment_test(
    compare: Callable[[Any, Any], bool], moment: Moment, number: Any
) -> ValueTest:
    """Numbers first when the rule's value is also one (``2018``), then moments:
    instants when both sides have offsets, else wall clocks."""
    wall, instant = moment.wall, moment.instant
    if number is None and instant is None:  # the usual date: wall clocks only
        def wall_clock(found: Any) -> bool:
            if found.__class__ is str:
                other = (_ORDERABLE.get(found) or orderable_text(found))[1]
            elif found.__class__ is int or found.__class__ is float:
                other = as_moment(text_key(found))
            else:
                return False
            return other is not None and compare(other.wall, wall)
        return wall_clock

    def test(found: Any) -> bool:
        cls = found.__class__
        if cls is str:
            mine, other = _ORDERABLE.get(found) or orderable_text(found)
        elif cls is int or cls is float:
            mine, other = found, as_moment(text_key(found))
        else:
            return False
        if mine is not None and number is not None:
            return compare(mine, number)
        if other is None:
            return False
        if instant is not None and other.instant is not None:
            return compare(other.instant, instant)
        return compare(other.wall, wall)
    return test


# ---- the oracle: direct interpretation -----------------------------------------------


def evaluate_condition(
    condition: Condition | None,
    record: Mapping[str, Any],
    message: Message | None = None,
    evidence: list[Evidence] | None = None,
) -> bool:
    """Interpret ``condition``. With ``evidence``, every leaf is evaluated (no short
    circuit) so the explanation is complete; each leaf appends what it saw."""
    if condition is None:
        return True
    if isinstance(condition, Leaf):
        values = condition.read(record, message)
        held = condition.holds(values)
        if evidence is not None:
            evidence.append(Evidence(condition.source, condition.path, condition.op,
                                     condition.quantifier, condition.value,
                                     tuple(values), held))
        return held
    if isinstance(condition, Not):
        return not evaluate_condition(condition.child, record, message, evidence)
    if isinstance(condition, Scope):
        return _evaluate_scope(condition, record, message, evidence)
    children = condition.children
    if evidence is not None:  # evaluate every child, then combine
        verdicts = [evaluate_condition(c, record, message, evidence) for c in children]
        return all(verdicts) if isinstance(condition, AllOf) else any(verdicts)
    lazy = (evaluate_condition(c, record, message) for c in children)
    return all(lazy) if isinstance(condition, AllOf) else any(lazy)


def _evaluate_scope(scope: Scope, record: Mapping[str, Any], message: Message | None,
                    evidence: list[Evidence] | None) -> bool:
    """``some`` (``every``): the first item that does (does not) satisfy ``where``
    decides, and is the evidence; when none decides, every item is."""
    items = scope.items(record)
    wanted = scope.kind == "some"
    deciding = next((item for item in items
                     if evaluate_condition(scope.where, item[1], message) is wanted), None)
    held = wanted if deciding is not None else (not wanted and bool(items))
    if evidence is not None:
        shown = [deciding] if deciding is not None else items
        for index, item in shown:
            _scoped_evidence(scope, item, index, message, evidence)
        if not items:
            evidence += [Evidence(leaf.source, leaf.path, leaf.op, leaf.quantifier,
                                  leaf.value, (), False, scope.of)
                         for leaf in leaves(scope.where)]
    return held


def _scoped_evidence(scope: Scope, item: Any, index: int, message: Message | None,
                     evidence: list[Evidence]) -> None:
    found: list[Evidence] = []
    evaluate_condition(scope.where, item, message, found)
    evidence += [replace(seen, scope=scope.of, item=index) for seen in found]


# ---- the hot path: closures over generated leaf functions --------------------------------


def compile_condition(condition: Condition | None) -> Predicate:
    """A closure equivalent to :func:`evaluate_condition` without evidence."""
    if condition is None:
        return _always
    if isinstance(condition, Leaf):
        return leaf_function(condition)
    if isinstance(condition, Not):
        inner = compile_condition(condition.child)
        return lambda record, message: not inner(record, message)
    if isinstance(condition, Scope):
        return scope_function(condition)
    parts = tuple(compile_condition(child) for child in condition.children)
    if len(parts) == 1:
        return parts[0]
    if isinstance(condition, AllOf):
        return lambda record, message: all(part(record, message) for part in parts)
    return lambda record, message: any(part(record, message) for part in parts)


def _always(record: Mapping[str, Any], message: Message | None) -> bool:
    return True


def scope_function(scope: Scope) -> Predicate:
    """The scope as one generated function: a loop over the list's items that calls the
    compiled ``where`` on each and stops at the first item that decides."""
    code = GeneratedCode()
    test = code.constant(compile_condition(scope.where))
    if scope.kind == "some":
        lines = walk_record(scope.steps, code,
                            lambda v: [f"if {test}({v}, message):", "    return True"])
        lines.append("    return False")
    else:
        lines = ["    seen = False"]
        lines += walk_record(scope.steps, code, lambda v: [
            f"if not {test}({v}, message):", "    return False", "seen = True"])
        lines.append("    return seen")
    function: Predicate = code.define("def scope(record, message):", lines, "scope")
    return function


def leaf_function(leaf: Leaf, in_section: bool = False) -> Predicate:
    """The leaf as one function: for a canonical path, generated source that walks the
    record with nested loops and tests each value inline, stopping at the first value
    that decides (one call per leaf, no list of values built). ``in_section``: the
    function is given the record's dict at the path's first key instead of the record
    (generated route code binds those sections once per message)."""
    if leaf.source == "hl7":
        return _hl7_leaf(leaf)
    code = GeneratedCode()
    test = _inline_test(leaf, code)
    steps = leaf.steps[1:] if in_section else leaf.steps

    def walk(body: Callable[[str], list[str]]) -> list[str]:
        return walk_record(steps, code, body, trusted=in_section)
    if leaf.op in ("exists", "missing"):
        verdict = "True" if leaf.op == "exists" else "False"
        lines = walk(lambda v: [f"if {v} != '':", f"    return {verdict}"])
        lines.append(f"    return {'False' if leaf.op == 'exists' else 'True'}")
    elif leaf.quantifier == "all":
        lines = ["    seen = False"]
        lines += walk(lambda v: [f"if not {test(v)}:", "    return False", "seen = True"])
        lines.append("    return seen")
    else:
        lines = walk(lambda v: [f"if {test(v)}:", "    return True"])
        lines.append("    return False")
    function: Predicate = code.define("def leaf(record, message):", lines, "leaf")
    return function


class GeneratedCode:
    """Constants for one piece of generated source: values from the rules live in the
    namespace under generated names and are never spliced into the text. ``helpers``
    adds the names a caller's own generated code refers to."""

    def __init__(self, helpers: Mapping[str, Any] | None = None) -> None:
        self.namespace: dict[str, Any] = {"_key": text_key, **(helpers or {})}
        self._names: dict[Any, str] = {}

    def constant(self, value: Any) -> str:
        hashable = isinstance(value, (str, int, frozenset)) and not isinstance(value, bool)
        key = (value.__class__, value) if hashable else (object, id(value))
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"_c{len(self._names)}"
            self.namespace[name] = value
        return name

    def define(self, header: str, lines: list[str], name: str) -> Any:
        source = "\n".join([header, *lines])
        exec(compile(source, f"<generated {name}>", "exec"), self.namespace)
        return self.namespace[name]


def walk_record(steps: tuple[str, ...], code: GeneratedCode, body: Callable[[str], list[str]],
                trusted: bool = False) -> list[str]:
    """Statements that visit each value at ``steps`` in ``record`` as ``values_at`` does
    (only dicts and lists are walked, None is skipped) and run ``body(value)`` on it.
    ``trusted``: ``record`` is known to be a dict."""
    lines: list[str] = []
    pad, node = "    ", "record"
    for number, step in enumerate(steps):
        child = f"n{number}"
        if step == EVERY:
            lines += [f"{pad}if isinstance({node}, list):", f"{pad}    for {child} in {node}:"]
            pad += "        "
        elif trusted and number == 0:
            lines.append(f"{pad}{child} = {node}.get({code.constant(step)})")
        else:
            lines += [f"{pad}if isinstance({node}, dict):",
                      f"{pad}    {child} = {node}.get({code.constant(step)})"]
            pad += "    "
        node = child
    lines.append(f"{pad}if {node} is not None:")
    return lines + [f"{pad}    {line}" for line in body(node)]


def _inline_test(leaf: Leaf, code: GeneratedCode) -> Callable[[str], str]:
    """An expression testing one value: eq/in family inline on the text key, the rest
    through the leaf's prepared test."""
    op = leaf.op
    if op in ("eq", "ne", "in", "not_in"):
        expected = (frozenset(map(text_key, leaf.value)) if op in ("in", "not_in")
                    else text_key(leaf.value))
        symbol = {"eq": "==", "ne": "!=", "in": "in", "not_in": "not in"}[op]
        name = code.constant(expected)
        return lambda v: f"(({v} if {v}.__class__ is str else _key({v})) {symbol} {name})"
    test = code.constant(leaf.test)
    return lambda v: f"{test}({v})"


def _hl7_leaf(leaf: Leaf) -> Predicate:
    path, holds = leaf.path, leaf.holds
    if parse_path(path).has_wildcard:
        def every(record: Mapping[str, Any], message: Message | None) -> bool:
            return holds([] if message is None else message.get_all(path))
        return every

    def single(record: Mapping[str, Any], message: Message | None) -> bool:
        value = None if message is None else message.get(path)
        return holds([] if value is None else [value])
    return single
