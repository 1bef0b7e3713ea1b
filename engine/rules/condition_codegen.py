"""Generated Python for route conditions: the code a route table compiles its buckets to.

:class:`SourceWriter` writes expressions for many rows at once: each path's key and each
leaf's verdict is computed at most once per message and shared by every row, and eq/in on
scalar paths are inlined. A scope (``some``/``every``) is one call to its own loop over the
list, shared the same way; its leaves' paths are relative to an item, so nothing inside it
is inlined or indexed. The operator semantics are those of
:mod:`engine.rules.conditions`, whose interpreter is the oracle this code is tested
against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.model.canonical_path import EVERY
from engine.rules.conditions import (
    AllOf,
    Condition,
    GeneratedCode,
    Leaf,
    Not,
    Scope,
    compile_condition,
    leaf_function,
    scope_function,
    text_key,
    walk_record,
)

# ---- reading one scalar path -------------------------------------------------------------


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


def value_function(steps: tuple[str, ...]) -> Callable[[Any], Any]:
    """The one value at a scalar canonical path, or ABSENT."""
    code = _code()
    lines = walk_record(steps, code, lambda v: [f"return {v}"])
    lines.append("    return _A")
    function: Callable[[Any], Any] = code.define("def value(record):", lines, "value")
    return function


def key_function(steps: tuple[str, ...]) -> Callable[[Any], Any]:
    """The text key of the one value at a scalar canonical path: ABSENT when there is
    none, NOTHING when the value equals nothing (a list or an object). Never None."""
    code = _code()
    lines = walk_record(steps, code,
                        lambda v: [f"return {v} if {v}.__class__ is str else _nkey({v})"])
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


def _code() -> GeneratedCode:
    """A piece of generated source that can use the sentinels and key readers."""
    return GeneratedCode({"_nkey": _key_or_nothing, "_keyof": _key_of, "_A": ABSENT,
                          "_E": _NO_SECTION})


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
        self._code = _code()
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
        if isinstance(condition, Scope):  # opaque: one call to its own loop
            text, name = self.lazy(("scope", _shape(condition)),
                                   lambda: scope_function(condition), "record, message")
            return text, {name}
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
    if isinstance(condition, Scope):  # a loop over a list, a call per item
        return 6
    return 1 + max(_cost(child) for child in condition.children)


def _shape(condition: Condition) -> Any:
    """Equal for conditions that always agree (the same leaves, the same way)."""
    if isinstance(condition, Leaf):
        return _signature(condition)
    if isinstance(condition, Not):
        return ("not", _shape(condition.child))
    if isinstance(condition, Scope):
        return (condition.kind, condition.steps, _shape(condition.where))
    return (type(condition).__name__, tuple(_shape(child) for child in condition.children))


def _proved(condition: Condition, known: frozenset[tuple[str, ...]]) -> bool:
    return (isinstance(condition, Leaf) and condition.is_scalar
            and condition.op in ("eq", "in") and condition.steps in known)


def _depth(condition: Condition) -> int:
    if isinstance(condition, Leaf | Scope):  # a scope is written as one call
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
