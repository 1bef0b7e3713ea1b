"""Route conditions: parsed once into a tree a linter can read, then compiled.

A condition is ``{all: [...]}``, ``{any: [...]}``, ``{not: ...}`` or a leaf that reads
values from the canonical record (``field``) or the raw HL7 message (``hl7``) and tests
them with one operator. Three evaluators share the operator semantics defined here:

* :func:`evaluate_condition` interprets the tree with ``values_at``. It is the oracle
  the others are tested against, and the only one that records :class:`Evidence`.
* :func:`compile_condition` builds a closure over generated leaf functions: each leaf
  walks the record with nested loops and stops at the first value that decides.
* :class:`SourceWriter` writes Python expressions for many rows at once (the route
  table's generated code): each path's key and each leaf's verdict is computed at most
  once per message and shared by every row, and eq/in on scalar paths are inlined.

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

Conditions are pure and never raise on any record, so evaluators may skip, share and
reorder the tests as they like.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    """What one leaf saw when a row was explained: why it fired."""

    source: Literal["field", "hl7"]
    path: str
    op: str
    quantifier: str
    expected: Any
    seen: tuple[Any, ...]
    held: bool


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


Condition: TypeAlias = Leaf | AllOf | AnyOf | Not


def leaves(condition: Condition | None) -> list[Leaf]:
    """Every leaf under ``condition``, in document order."""
    if condition is None:
        return []
    if isinstance(condition, Leaf):
        return [condition]
    if isinstance(condition, Not):
        return leaves(condition.child)
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
    if not isinstance(data, Mapping):
        raise RuleError(f"{location}: a condition must be a mapping, not {data!r}", where=where)
    for combinator in ("all", "any"):
        if combinator in data:
            _only_keys(data, {combinator}, where, location)
            return _combination(combinator, data[combinator], where, location)
    if "not" in data:
        _only_keys(data, {"not"}, where, location)
        return Not(parse_condition(data["not"], where, f"{location}.not"))
    if "field" in data or "hl7" in data:
        return _leaf(data, where, location)
    raise RuleError(
        f"{location}: not a condition (keys {sorted(map(str, data))})", where=where,
        hint="Write {all: [...]}, {any: [...]}, {not: ...}, or a leaf with field or hl7",
    )


def _only_keys(data: Mapping[str, Any], allowed: set[str], where: str, location: str) -> None:
    extra = sorted(str(key) for key in data if key not in allowed)
    if extra:
        raise RuleError(f"{location}: unexpected keys {extra}", where=where)


def _combination(kind: str, items: Any, where: str, location: str) -> Condition:
    if not isinstance(items, list) or not items:
        raise RuleError(f"{location}.{kind}: needs a non-empty list of conditions", where=where)
    children = tuple(
        parse_condition(item, where, f"{location}.{kind}[{index}]")
        for index, item in enumerate(items)
    )
    return AllOf(children) if kind == "all" else AnyOf(children)


def _leaf(data: Mapping[str, Any], where: str, location: str) -> Leaf:
    _only_keys(data, {"field", "hl7", "op", "value", "quantifier"}, where, location)
    if "field" in data and "hl7" in data:
        raise RuleError(f"{location}: a leaf reads either field or hl7, not both", where=where)
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
    children = condition.children
    if evidence is not None:  # evaluate every child, then combine
        verdicts = [evaluate_condition(c, record, message, evidence) for c in children]
        return all(verdicts) if isinstance(condition, AllOf) else any(verdicts)
    lazy = (evaluate_condition(c, record, message) for c in children)
    return all(lazy) if isinstance(condition, AllOf) else any(lazy)


# ---- the hot path: closures over generated leaf functions --------------------------------


class _Sentinel:
    """A named marker value, distinct from every value a record can hold."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


ABSENT = _Sentinel("ABSENT")
"""The key, or value, of a scalar path with no value (absent or None) in generated code,
whose per-message locals are None until computed."""
NOTHING = _Sentinel("NOTHING")
"""The key of a value that equals nothing (a list or an object)."""
INLINE_OPS = ("eq", "ne", "in", "not_in", "exists", "missing")
"""Operators generated code applies to a scalar path's key without calling anything."""


def compile_condition(condition: Condition | None) -> Predicate:
    """A closure equivalent to :func:`evaluate_condition` without evidence."""
    if condition is None:
        return _always
    if isinstance(condition, Leaf):
        return leaf_function(condition)
    if isinstance(condition, Not):
        inner = compile_condition(condition.child)
        return lambda record, message: not inner(record, message)
    parts = tuple(compile_condition(child) for child in condition.children)
    if len(parts) == 1:
        return parts[0]
    if isinstance(condition, AllOf):
        return lambda record, message: all(part(record, message) for part in parts)
    return lambda record, message: any(part(record, message) for part in parts)


def _always(record: Mapping[str, Any], message: Message | None) -> bool:
    return True


def leaf_function(leaf: Leaf, in_section: bool = False) -> Predicate:
    """The leaf as one function: for a canonical path, generated source that walks the
    record with nested loops and tests each value inline, stopping at the first value
    that decides (one call per leaf, no list of values built). ``in_section``: the
    function is given the record's dict at the path's first key instead of the record
    (generated route code binds those sections once per message)."""
    if leaf.source == "hl7":
        return _hl7_leaf(leaf)
    code = _Code()
    test = _inline_test(leaf, code)
    steps = leaf.steps[1:] if in_section else leaf.steps

    def walk(body: Callable[[str], list[str]]) -> list[str]:
        return _walk(steps, code, body, trusted=in_section)
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


def value_function(steps: tuple[str, ...]) -> Callable[[Any], Any]:
    """The one value at a scalar canonical path, or ABSENT."""
    code = _Code()
    lines = _walk(steps, code, lambda v: [f"return {v}"])
    lines.append("    return _A")
    function: Callable[[Any], Any] = code.define("def value(record):", lines, "value")
    return function


def key_function(steps: tuple[str, ...]) -> Callable[[Any], Any]:
    """The text key of the one value at a scalar canonical path: ABSENT when there is
    none, NOTHING when the value equals nothing (a list or an object). Never None."""
    code = _Code()
    lines = _walk(steps, code, lambda v: [f"return {v} if {v}.__class__ is str else _nkey({v})"])
    lines.append("    return _A")
    function: Callable[[Any], Any] = code.define("def key(record):", lines, "key")
    return function


def _key_or_nothing(value: Any) -> Any:
    key = text_key(value)
    return NOTHING if key is None else key


def _key_of(value: Any) -> Any:
    return ABSENT if value is None else _key_or_nothing(value)


_NO_SECTION: dict[str, Any] = {}
"""What generated code reads when a record has no such section. A dict, so that walks
start without a check; generated code only ever calls ``get`` on it."""


class _Code:
    """Constants for one piece of generated source: values from the rules live in the
    namespace under generated names and are never spliced into the text."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_key": text_key, "_nkey": _key_or_nothing,
                                          "_keyof": _key_of, "_A": ABSENT, "_E": _NO_SECTION}
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


def _walk(steps: tuple[str, ...], code: _Code, body: Callable[[str], list[str]],
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


def _inline_test(leaf: Leaf, code: _Code) -> Callable[[str], str]:
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


# ---- the hot path: generated source for many rows ----------------------------------------


class SourceWriter:
    """Python expressions for conditions, for generated evaluators. Each path's key and
    each distinct leaf's verdict is a local computed at most once per message, on first
    use, and shared by every row that needs it. Values from the rules are constants in
    ``namespace``, never spliced into the source, so rule text cannot inject code.

    The writer tracks which locals are certainly computed at the point being written
    (``ready``): code is written in execution order, and the first operand of a
    condition always runs, so later uses read the plain local without the check.
    ``functions`` caches leaf and key functions by what they compute, so that the
    writers of one rule set share them."""

    MAX_INLINE_DEPTH = 24
    """Deeper condition trees are called as closures: the parser limits nesting."""

    def __init__(self, functions: dict[Any, Callable[..., Any]] | None = None) -> None:
        self._code = _Code()
        self.namespace = self._code.namespace
        self.locals: list[str] = []
        self.ready: set[str] = set()
        self._used: set[str] = set()  # locals some code written so far may have set
        self._lazy: dict[Any, str] = {}
        self._functions = {} if functions is None else functions
        self._sections: dict[str, str] = {}

    def constant(self, value: Any) -> str:
        """The name of ``value`` in the namespace."""
        return self._code.constant(value)

    def lazy(self, signature: Any, make: Callable[[], Callable[..., Any]],
             args: str, use: bool = True) -> tuple[str, str]:
        """(expression, local): the expression yields ``make()(args)``, computing it on
        first use only; once ``ready``, the plain local. ``use=False`` only declares."""
        function = self._functions.get(signature)
        if function is None:
            function = self._functions[signature] = make()
        name = self._local(signature)
        self.namespace[f"_f{name}"] = function
        return (self._cached(name, f"_f{name}({args})") if use else ""), name

    def _local(self, signature: Any) -> str:
        name = self._lazy.get(signature)
        if name is None:
            name = self._lazy[signature] = f"_x{len(self._lazy)}"
            self.locals.append(name)
        return name

    def _cached(self, name: str, compute: str) -> str:
        self._used.add(name)
        if name in self.ready:
            return name
        return f"({name} if {name} is not None else ({name} := {compute}))"

    def key(self, steps: tuple[str, ...]) -> tuple[str, str]:
        """(expression, local) for the key of a scalar canonical path. A two-step path
        (``message.sending_facility``, most of what rows test) is read inline from its
        section, which the prologue binds once per message."""
        if len(steps) != 2:
            return self.lazy(("key", steps), lambda: key_function(steps), "record")
        name = self._local(("key", steps))
        return self._cached(name, self._key_read(steps)), name

    def _key_read(self, steps: tuple[str, ...]) -> str:
        found = f"{self._section(steps[0])}.get({self.constant(steps[1])})"
        return f"_v if (_v := {found}).__class__ is str else _keyof(_v)"

    def _section(self, key: str) -> str:
        name = self._sections.get(key)
        if name is None:
            name = self._sections[key] = f"_s{len(self._sections)}"
        return name

    def prologue(self) -> list[str]:
        """Statements to run first: bind each section read inline (a dict, else empty)."""
        lines = []
        for key, name in self._sections.items():
            lines += [f"{name} = record.get({self.constant(key)}) if isinstance(record, dict)"
                      " else None",
                      f"if not isinstance({name}, dict):", f"    {name} = _E"]
        return lines

    def compute_key(self, steps: tuple[str, ...]) -> list[str]:
        """Statements setting the local of the key of ``steps`` (ready afterwards)."""
        name = self.key(steps)[1]
        compute = self._key_read(steps) if len(steps) == 2 else f"_f{name}(record)"
        return self._guarded(name, [f"{name} = {compute}"])

    def _guarded(self, name: str, lines: list[str]) -> list[str]:
        """``lines`` computing ``name``, behind ``if name is None`` when code written
        earlier may have computed it already; ``name`` is ready afterwards."""
        if name in self.ready:
            return []
        if name in self._used:
            lines = [f"if {name} is None:"] + ["    " + line for line in lines]
        self.ready.add(name)
        self._used.add(name)
        return lines

    def condition(
        self, condition: Condition | None, known: frozenset[tuple[str, ...]] = frozenset()
    ) -> str | None:
        """An expression for ``condition``, to be run next; None when it always holds.
        Top-level eq/in leaves on ``known`` paths are left out: the index proved them."""
        if condition is None:
            return None
        if _depth(condition) > self.MAX_INLINE_DEPTH:
            text, name = self.lazy(("tree", id(condition)),
                                   lambda: compile_condition(condition), "record, message")
            self.ready.add(name)
            return text
        top = condition.children if isinstance(condition, AllOf) else (condition,)
        parts = _cheap_first(tuple(c for c in top if not _proved(c, known)))
        if not parts:
            return None
        text, forced = self._chain(parts, " and ")
        self.ready |= forced
        return text

    def _chain(self, parts: tuple[Condition, ...], joiner: str) -> tuple[str, set[str]]:
        """``a and b ...`` (or ``or``): reaching an operand means the ones before it ran."""
        before = set(self.ready)
        texts: list[str] = []
        first: set[str] = set()
        parts = tuple({_shape(part): part for part in parts}.values())  # a and a is a
        for index, part in enumerate(parts):
            text, forced = self._expression(part)
            texts.append(text)
            first = forced if index == 0 else first
            self.ready |= forced
        self.ready = before
        return (texts[0] if len(texts) == 1 else f"({joiner.join(texts)})"), first

    def _expression(self, condition: Condition) -> tuple[str, set[str]]:
        """The text, and the locals its evaluation certainly computes."""
        if isinstance(condition, Leaf):
            return self._leaf(condition)
        if isinstance(condition, Not):
            text, forced = self._expression(condition.child)
            return f"(not {text})", forced
        joiner = " and " if isinstance(condition, AllOf) else " or "
        return self._chain(_cheap_first(condition.children), joiner)

    def _leaf(self, leaf: Leaf) -> tuple[str, set[str]]:
        if leaf.is_scalar and leaf.op in INLINE_OPS:
            return self._key_test(leaf)
        if leaf.is_scalar:  # matches, lt...: the path's value is read once for all
            value, local = self._value(leaf.steps)
            name = self._local(("leaf", _signature(leaf)))
            test = self._test_name(leaf)
            return self._cached(name, f"{value} is not _A and {test}({local})"), {name, local}
        if leaf.source == "field" and len(leaf.steps) > 1 and leaf.steps[1] != EVERY:
            text, name = self.lazy(("leaf", _signature(leaf)),
                                   lambda: leaf_function(leaf, in_section=True),
                                   f"{self._section(leaf.steps[0])}, message")
        else:
            text, name = self.lazy(("leaf", _signature(leaf)), lambda: leaf_function(leaf),
                                   "record, message")
        return text, {name}

    def _value(self, steps: tuple[str, ...]) -> tuple[str, str]:
        """(expression, local) for the value of a scalar path, ABSENT when it has none."""
        if len(steps) != 2:
            return self.lazy(("value", steps), lambda: value_function(steps), "record")
        found = f"{self._section(steps[0])}.get({self.constant(steps[1])})"
        name = self._local(("value", steps))
        return self._cached(name, f"_v if (_v := {found}) is not None else _A"), name

    def _test_name(self, leaf: Leaf) -> str:
        """One constant per distinct test, however many rows repeat the leaf."""
        function = self._functions.setdefault(("test", _signature(leaf)), leaf.test)
        return self.constant(function)

    def _key_test(self, leaf: Leaf) -> tuple[str, set[str]]:
        key, name = self.key(leaf.steps)
        op = leaf.op
        if op in ("eq", "ne"):
            expected = self.constant(text_key(leaf.value))
            text = (f"{key} == {expected}" if op == "eq"
                    else f"({key} is not _A and {name} != {expected})")
        elif op in ("in", "not_in"):
            members = self.constant(frozenset(map(text_key, leaf.value)))
            text = (f"{key} in {members}" if op == "in"
                    else f"({key} is not _A and {name} not in {members})")
        elif op == "exists":
            text = f"({key} is not _A and {name} != '')"
        else:
            text = f"({key} is _A or {name} == '')"
        return text, {name}


def _cheap_first(parts: tuple[Condition, ...]) -> tuple[Condition, ...]:
    """Operands in the order that decides soonest for least: conditions are pure and
    never raise, so ``and``/``or`` may test them in any order."""
    return tuple(sorted(parts, key=_cost))


def _cost(condition: Condition) -> int:
    """Rough rank: a key comparison costs nothing and usually decides; reading a list
    or the raw HL7 message costs a call; exists/ne/not rarely decide."""
    if isinstance(condition, Leaf):
        if condition.source == "hl7":
            return 8
        rank = 0 if condition.is_scalar and condition.op in INLINE_OPS else (
            2 if condition.is_scalar else 4)
        return rank + (1 if condition.op in ("ne", "not_in", "exists", "missing") else 0)
    if isinstance(condition, Not):
        return 1 + _cost(condition.child)
    return 1 + max(_cost(child) for child in condition.children)


def _shape(condition: Condition) -> Any:
    """Equal for conditions that always agree (the same leaves, the same way)."""
    if isinstance(condition, Leaf):
        return _signature(condition)
    if isinstance(condition, Not):
        return ("not", _shape(condition.child))
    return (type(condition).__name__, tuple(_shape(child) for child in condition.children))


def _proved(condition: Condition, known: frozenset[tuple[str, ...]]) -> bool:
    return (isinstance(condition, Leaf) and condition.is_scalar
            and condition.op in ("eq", "in") and condition.steps in known)


def _depth(condition: Condition) -> int:
    if isinstance(condition, Leaf):
        return 1
    if isinstance(condition, Not):
        return 1 + _depth(condition.child)
    return 1 + max(_depth(child) for child in condition.children)


def _signature(leaf: Leaf) -> tuple[Any, ...]:
    """Identifies leaves that always agree; types are kept, so ``true`` and ``1`` differ."""
    return (leaf.source, leaf.steps or leaf.path, leaf.op, leaf.quantifier,
            _typed(leaf.value))


def _typed(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_typed(item) for item in value)
    return (value.__class__.__name__, value)
