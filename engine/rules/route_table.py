"""Route tables compiled into an immutable, indexed evaluator with a "collect" hit policy.

Every row whose match and condition hold fires, in table order then row order. The
evaluator never reads rule text after :func:`compile_routes`. Rows are indexed twice so
that a message meets only the rows that could fire for it:

1. by message type and event (``match``): a row with only a type, or no match, joins
   every bucket it is compatible with;
2. inside a bucket, by the key of the scalar canonical path most rows pin with
   ``eq``/``in`` in a top-level ``all`` (``message.sending_facility``, say), then again
   inside each group, up to ``INDEX_MAX_DEPTH`` levels: a record meets the rows that
   want its value plus the rows that do not test that path.

Each bucket is then one generated Python function (``SourceWriter`` in
``engine.rules.condition_codegen``): the index becomes nested ifs, each row an ``if``, and the
leaves the index proved are left out. The rows that fire are sorted back into table
order, and the decision for a set of fired rows is built once and shared, since it is
immutable.

:meth:`RouteTable.evaluate_naive` walks every row in order and interprets each condition
tree directly; it is the oracle ``evaluate`` is tested against and the benchmark baseline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.hl7v2 import Message
from engine.rules.condition_codegen import SourceWriter, key_function
from engine.rules.conditions import (
    AllOf,
    Condition,
    Evidence,
    Leaf,
    RuleError,
    evaluate_condition,
    parse_condition,
    text_key,
)
from engine.rules.duration import DurationError, parse_duration

__all__ = [
    "Checkpoint", "Evidence", "FiredRow", "Match", "RouteDecision", "RouteRow", "RouteTable",
    "RuleError", "TaskIntent", "compile_routes",
]

INDEX_MIN_ROWS = 3
"""A bucket gets a value index on a path only when at least this many of its rows test
that path: below it, the lookup costs more than the rows it skips."""
INDEX_MAX_DEPTH = 3
"""Index levels per bucket: rows pinned by ``in`` are copied into each of their values'
groups, so depth is bounded to keep generated code small."""

_DECISION_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Checkpoint:
    """A human step on a row: ``hold`` delays the row's deliveries until a task is
    approved; ``notify`` delivers at once and creates the task alongside."""

    mode: str
    queue: str
    kind: str
    description: str | None = None
    # Seconds from the task's creation until it is due (``due: 2h`` in the rule).
    due_after: float | None = None
    # notify only: the states its completion chooses from (engine.task_outcome).
    states: tuple[str, ...] = ()


@dataclass(frozen=True)
class FiredRow:
    """A row that fired; ``evidence`` is filled only when the decision was explained."""

    table: str
    id: str
    destinations: tuple[str, ...]
    checkpoint: Checkpoint | None
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class TaskIntent:
    """A task the engine must create because a row with a checkpoint fired."""

    row: str
    queue: str
    kind: str
    mode: str
    destinations: tuple[str, ...]
    description: str | None
    due_after: float | None = None


@dataclass(frozen=True)
class RouteDecision:
    """What the route tables decided for one message."""

    rows: tuple[FiredRow, ...]
    destinations: tuple[str, ...]
    tasks: tuple[TaskIntent, ...]

    @property
    def held(self) -> tuple[str, ...]:
        """Destinations named by a ``hold`` row: they wait for the task's approval even
        when another row names them too, so a broader row cannot bypass a review."""
        held = {d for task in self.tasks if task.mode == "hold" for d in task.destinations}
        return tuple(d for d in self.destinations if d in held)

    @property
    def immediate(self) -> tuple[str, ...]:
        """Destinations to deliver at once."""
        held = set(self.held)
        return tuple(d for d in self.destinations if d not in held)


EMPTY_DECISION = RouteDecision((), (), ())


@dataclass(frozen=True)
class Match:
    """A row's message types and events; None accepts any."""

    types: tuple[str, ...] | None = None
    events: tuple[str, ...] | None = None

    def accepts(self, message_type: str | None, event: str | None) -> bool:
        return (self.types is None or message_type in self.types) and (
            self.events is None or event in self.events
        )


@dataclass(frozen=True, eq=False)
class RouteRow:
    """One compiled row, for evaluation and for the linter. ``index`` is the row's
    position in its table (``rows[index]``); ``order`` its position in ``RouteTable.rows``."""

    table: str
    id: str
    index: int
    order: int
    match: Match
    destinations: tuple[str, ...]
    checkpoint: Checkpoint | None
    condition: Condition | None
    description: str | None = None

    @property
    def fired(self) -> FiredRow:
        return FiredRow(self.table, self.id, self.destinations, self.checkpoint)

    @property
    def task(self) -> TaskIntent | None:
        checkpoint = self.checkpoint
        if checkpoint is None:
            return None
        return TaskIntent(self.id, checkpoint.queue, checkpoint.kind, checkpoint.mode,
                          self.destinations, checkpoint.description or self.description,
                          checkpoint.due_after)


# ---- compiling ---------------------------------------------------------------------------


def compile_routes(tables: Sequence[Mapping[str, Any]]) -> RouteTable:
    """Compile schema-valid route tables; RuleError names the table, the row and what to
    fix for problems the schema cannot see (bad regex, duplicate ids, bad paths)."""
    rows: list[RouteRow] = []
    table_ids: set[str] = set()
    row_ids: dict[str, str] = {}
    for position, table in enumerate(tables):
        table_id = _table_id(table, position, table_ids)
        for index, data in enumerate(_table_rows(table, table_id)):
            row = _compile_row(table_id, index, len(rows), data)
            if row.id in row_ids:
                raise RuleError(
                    f"row id {row.id!r} is already used by {row_ids[row.id]}",
                    where=_where(table_id, index, row.id),
                    hint="Row ids are unique across every route table; rename one",
                )
            row_ids[row.id] = f"table {table_id!r} rows[{index}]"
            rows.append(row)
    return RouteTable(tuple(rows))


def _table_id(table: Any, position: int, seen: set[str]) -> str:
    table_id = table.get("id") if isinstance(table, Mapping) else None
    if not isinstance(table_id, str) or not table_id:
        raise RuleError(f"route table {position} has no id", hint="Give the table an id")
    if table_id in seen:
        raise RuleError(f"route table id {table_id!r} is used twice",
                        hint="Give every route table its own id")
    seen.add(table_id)
    return table_id


def _table_rows(table: Mapping[str, Any], table_id: str) -> list[Any]:
    rows = table.get("rows")
    if not isinstance(rows, list):
        raise RuleError(f"route table {table_id!r}: rows must be a list")
    return rows


def _where(table_id: str, index: int, row_id: Any = None) -> str:
    row = f"row {row_id!r} (rows[{index}])" if isinstance(row_id, str) else f"rows[{index}]"
    return f"route table {table_id!r}, {row}"


def _compile_row(table_id: str, index: int, order: int, data: Any) -> RouteRow:
    if not isinstance(data, Mapping):
        raise RuleError("a row must be a mapping", where=_where(table_id, index))
    row_id = data.get("id")
    where = _where(table_id, index, row_id)
    if not isinstance(row_id, str) or not row_id:
        raise RuleError("the row has no id", where=where, hint="Give every row a stable id")
    condition = parse_condition(data["when"], where) if "when" in data else None
    checkpoint = _checkpoint(data.get("checkpoint"), where)
    destinations = _destinations(data.get("to"), checkpoint, where)
    description = data.get("description")
    return RouteRow(
        table_id, row_id, index, order, _match(data.get("match"), where), destinations,
        checkpoint, condition, description if isinstance(description, str) else None,
    )


def _match(data: Any, where: str) -> Match:
    if data is None:
        return Match()
    if not isinstance(data, Mapping):
        raise RuleError(f"match must be a mapping, not {data!r}", where=where)
    return Match(_names(data.get("type"), "match.type", where),
                 _names(data.get("event"), "match.event", where))


def _names(value: Any, location: str, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise RuleError(f"{location}: write a string or a non-empty list of strings",
                        where=where)
    return tuple(dict.fromkeys(names))


def _checkpoint(data: Any, where: str) -> Checkpoint | None:
    if data is None:
        return None
    if not isinstance(data, Mapping) or data.get("mode") not in ("hold", "notify"):
        raise RuleError("checkpoint.mode must be hold or notify", where=where)
    for key in ("queue", "kind"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise RuleError(f"checkpoint.{key} is required", where=where,
                            hint="Name the work queue and the kind of task to create")
    description = data.get("description")
    due = None
    if "due" in data:
        try:
            due = parse_duration(data["due"])
        except DurationError as error:
            raise RuleError(f"checkpoint.due: {error.reason}", where=where,
                            hint=error.hint) from None
    return Checkpoint(data["mode"], data["queue"], data["kind"],
                      description if isinstance(description, str) else None, due,
                      _states(data, where))


def _states(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    states = data.get("states")
    if states is None:
        return ()
    if data["mode"] == "hold":
        raise RuleError("checkpoint.states: a hold is approved or rejected, not completed "
                        "with a state", where=where,
                        hint="Name states on a notify checkpoint, or remove them")
    if not isinstance(states, list) or not states or not all(
            isinstance(state, str) and state for state in states):
        raise RuleError("checkpoint.states: write a non-empty list of states", where=where)
    return tuple(dict.fromkeys(states))


def _destinations(data: Any, checkpoint: Checkpoint | None, where: str) -> tuple[str, ...]:
    if not isinstance(data, list) or not all(isinstance(d, str) and d for d in data):
        raise RuleError("to: write a list of connection ids", where=where)
    if not data and checkpoint is None:
        raise RuleError("to is empty and there is no checkpoint, so the row does nothing",
                        where=where, hint="Name a destination or add a checkpoint")
    return tuple(dict.fromkeys(data))


# ---- the evaluator -----------------------------------------------------------------------


Fire = Callable[[Mapping[str, Any], Message | None], tuple[int, ...]]
"""A bucket's generated evaluator: the orders of the rows that fire, ascending."""


@dataclass(frozen=True)
class _Bucket:
    """The rows one message type/event can meet: their index and generated evaluator."""

    index: _IndexNode
    fire: Fire = field(repr=False)


@dataclass(frozen=True)
class _Dispatch:
    """(type, event) -> bucket, falling back for types and events no row names."""

    exact: Mapping[tuple[str, str], _Bucket]
    by_type: Mapping[str, _Bucket]
    by_event: Mapping[str, _Bucket]
    fallback: _Bucket

    def bucket(self, message_type: Any, event: Any) -> _Bucket:
        found = self.exact.get((message_type, event))
        if found is None:
            found = self.by_type.get(message_type)
            if found is None:
                found = self.by_event.get(event, self.fallback)
        return found


class RouteTable:
    """The compiled route tables of one rule-set version. Immutable: build a new one with
    :func:`compile_routes` to change rules, and swap the reference."""

    __slots__ = ("_decisions", "_dispatch", "_exact", "_rows")

    def __init__(self, rows: tuple[RouteRow, ...]) -> None:
        self._rows = rows
        self._dispatch = _build_dispatch(rows)
        self._exact: dict[tuple[Any, Any], Fire] = {
            key: bucket.fire for key, bucket in self._dispatch.exact.items()
        }
        # Decisions are immutable values, so one decision object serves every message
        # that fires the same rows; bounded so that odd traffic cannot grow it.
        self._decisions: dict[tuple[int, ...], RouteDecision] = {(): EMPTY_DECISION}

    @property
    def rows(self) -> tuple[RouteRow, ...]:
        return self._rows

    def destinations(self) -> frozenset[str]:
        """Every connection some row can deliver to."""
        return frozenset(d for row in self._rows for d in row.destinations)

    def candidates(self, record: Mapping[str, Any]) -> tuple[RouteRow, ...]:
        """The rows ``evaluate`` tests for ``record`` after both indexes, in order: what
        the index prunes, for diagnostics and tests."""
        bucket = self._dispatch.bucket(*_type_and_event(record))
        return tuple(sorted(bucket.index.candidates(record), key=lambda row: row.order))

    def evaluate(
        self, record: Mapping[str, Any], message: Message | None = None, *,
        explain: bool = False,
    ) -> RouteDecision:
        """Fire every row that holds for ``record`` (and the raw ``message``, for hl7
        conditions). With ``explain``, each fired row carries the evidence of its leaves."""
        header = record.get("message") if isinstance(record, dict) else None
        fire = None
        if isinstance(header, dict):
            try:  # the common case first: a (type, event) some row names
                fire = self._exact.get((header.get("type"), header.get("event")))
            except TypeError:  # unhashable: not a type or event any row names
                fire = None
        if fire is None:
            fire = self._dispatch.bucket(*_type_and_event(record)).fire
        fired = fire(record, message)
        if explain:
            return self._explained(fired, record, message)
        decision = self._decisions.get(fired)
        if decision is None:
            decision = _decide([self._rows[order] for order in fired])
            if len(self._decisions) < _DECISION_CACHE_SIZE:
                self._decisions[fired] = decision
        return decision

    def evaluate_naive(
        self, record: Mapping[str, Any], message: Message | None = None, *,
        explain: bool = False,
    ) -> RouteDecision:
        """The same decision as :meth:`evaluate`, by testing every row in order with the
        plain interpreter: no index, no generated code, no cache."""
        message_type, event = _type_and_event(record)
        fired = [
            row for row in self._rows
            if row.match.accepts(message_type, event)
            and evaluate_condition(row.condition, record, message)
        ]
        if explain:
            return self._explained(tuple(row.order for row in fired), record, message)
        return _decide(fired)

    def _explained(
        self, fired: Iterable[int], record: Mapping[str, Any], message: Message | None
    ) -> RouteDecision:
        rows = [self._rows[order] for order in fired]
        evidence = []
        for row in rows:
            found: list[Evidence] = []
            evaluate_condition(row.condition, record, message, found)
            evidence.append(tuple(found))
        return _decide(rows, evidence)


def _type_and_event(record: Mapping[str, Any]) -> tuple[Any, Any]:
    header = record.get("message") if isinstance(record, dict) else None
    if not isinstance(header, dict):
        return None, None
    message_type, event = header.get("type"), header.get("event")
    # Only strings name types and events; anything else matches rows without a match.
    return (message_type if isinstance(message_type, str) else None,
            event if isinstance(event, str) else None)


def _decide(
    rows: Sequence[RouteRow], evidence: Sequence[tuple[Evidence, ...]] | None = None
) -> RouteDecision:
    if evidence is None:
        fired = tuple(row.fired for row in rows)
    else:
        fired = tuple(FiredRow(row.table, row.id, row.destinations, row.checkpoint, found)
                      for row, found in zip(rows, evidence, strict=True))
    destinations = tuple(dict.fromkeys(d for row in rows for d in row.destinations))
    tasks = tuple(task for task in (row.task for row in rows) if task is not None)
    return RouteDecision(fired, destinations, tasks)


# ---- the index -----------------------------------------------------------------------------


_Path = tuple[str, ...]


@dataclass(frozen=True)
class _IndexNode:
    """Rows split on the key of one scalar path: ``rest`` holds the rows that do not pin
    the path, ``groups`` the rows that want each value. A node without a path is a leaf
    whose rows are all tested."""

    rows: tuple[RouteRow, ...] = ()
    path: _Path | None = None
    rest: _IndexNode | None = None
    groups: Mapping[str, _IndexNode] = field(default_factory=dict)

    def candidates(self, record: Mapping[str, Any]) -> list[RouteRow]:
        if self.path is None or self.rest is None:
            return list(self.rows)
        found = self.rest.candidates(record)
        group = self.groups.get(key_function(self.path)(record))
        return found + group.candidates(record) if group is not None else found


def _build_dispatch(rows: tuple[RouteRow, ...]) -> _Dispatch:
    """Buckets for every (type, event) some row names, then per type for other events,
    then per event for other types, then one for everything else."""
    builder = _BucketBuilder(rows)
    exact: dict[tuple[str, str], _Bucket] = {}
    by_type: dict[str, _Bucket] = {}
    for message_type in dict.fromkeys(t for row in rows for t in row.match.types or ()):
        of_type = [r for r in rows if r.match.types is None or message_type in r.match.types]
        for event in dict.fromkeys(e for row in of_type for e in row.match.events or ()):
            exact[message_type, event] = builder.bucket(r for r in of_type
                                                        if _has_event(r, event))
        by_type[message_type] = builder.bucket(r for r in of_type if r.match.events is None)
    any_type = [row for row in rows if row.match.types is None]
    by_event = {
        event: builder.bucket(r for r in any_type if _has_event(r, event))
        for event in dict.fromkeys(e for row in any_type for e in row.match.events or ())
    }
    fallback = builder.bucket(r for r in any_type if r.match.events is None)
    return _Dispatch(exact, by_type, by_event, fallback)


def _has_event(row: RouteRow, event: str) -> bool:
    return row.match.events is None or event in row.match.events


class _BucketBuilder:
    """Builds each distinct bucket once: its index tree, then its generated code."""

    def __init__(self, rows: tuple[RouteRow, ...]) -> None:
        self._pins = {row.order: _pinned_values(row) for row in rows}
        self._made: dict[tuple[int, ...], _Bucket] = {}
        self._functions: dict[Any, Callable[..., Any]] = {}  # leaf and key functions

    def bucket(self, rows: Iterable[RouteRow]) -> _Bucket:
        chosen = tuple(rows)
        key = tuple(row.order for row in chosen)
        if key not in self._made:
            index = self._index(chosen, frozenset(), 0)
            self._made[key] = _Bucket(index, _generate(index, SourceWriter(self._functions)))
        return self._made[key]

    def _index(self, rows: tuple[RouteRow, ...], used: frozenset[_Path],
               depth: int) -> _IndexNode:
        path = self._best_path(rows, used) if depth < INDEX_MAX_DEPTH else None
        if path is None:
            return _IndexNode(rows)
        pins = self._pins
        rest = tuple(row for row in rows if path not in pins[row.order])
        pinned = [row for row in rows if path in pins[row.order]]
        values = dict.fromkeys(v for row in pinned for v in sorted(pins[row.order][path]))
        below = used | {path}
        groups = {
            value: self._index(tuple(r for r in pinned if value in pins[r.order][path]),
                               below, depth + 1)
            for value in values
        }
        if not groups:  # every pinned row wants contradictory values: none can fire
            return self._index(rest, below, depth + 1)
        return _IndexNode((), path, self._index(rest, below, depth + 1), groups)

    def _best_path(self, rows: tuple[RouteRow, ...], used: frozenset[_Path]) -> _Path | None:
        counts = Counter(p for row in rows for p in self._pins[row.order] if p not in used)
        if not counts:
            return None
        path, count = counts.most_common(1)[0]
        return path if count >= INDEX_MIN_ROWS else None


def _pinned_values(row: RouteRow) -> dict[_Path, frozenset[str]]:
    """Scalar canonical paths the row requires to hold one of a few values (eq/in in a
    top-level all), with those values' text keys. Scopes pin nothing: their leaves'
    paths are relative to an item, and generated code calls them whole."""
    condition = row.condition
    if isinstance(condition, Leaf):
        tests: tuple[Condition, ...] = (condition,)
    elif isinstance(condition, AllOf):
        tests = condition.children
    else:
        return {}
    pinned: dict[_Path, frozenset[str]] = {}
    for leaf in tests:
        if not isinstance(leaf, Leaf) or not leaf.is_scalar or leaf.op not in ("eq", "in"):
            continue
        wanted = leaf.value if leaf.op == "in" else (leaf.value,)
        keys = frozenset(k for k in map(text_key, wanted) if k is not None)
        pinned[leaf.steps] = pinned[leaf.steps] & keys if leaf.steps in pinned else keys
    return pinned


# ---- generated code ----------------------------------------------------------------------


def _generate(index: _IndexNode, writer: SourceWriter) -> Fire:
    """One Python function for a bucket: the index becomes nested ifs on path keys, rows
    become ``if <condition>: add(order)``; see ``SourceWriter`` for the expressions."""
    body: list[str] = []
    dispatches = _write_node(index, writer, body, frozenset(), 2)
    prologue = writer.prologue()
    names = [name for name in writer.namespace if not name.startswith("__")]
    # Constants become closure cells of fire: read like locals, at no cost per call.
    lines = [f"def make({', '.join(names)}):", "    def fire(record, message):"]
    if writer.locals:
        lines.append(f"        {' = '.join(writer.locals)} = None")
    lines += ["        " + line for line in prologue]
    lines += ["        fired = []", "        add = fired.append", *body]
    if dispatches:  # groups append after the rest: restore table order
        lines.append("        fired.sort()")
    lines += ["        return tuple(fired)", "    return fire"]
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), "<route table bucket>", "exec"), namespace)
    fire: Fire = namespace["make"](*(writer.namespace[name] for name in names))
    return fire


def _write_node(node: _IndexNode, writer: SourceWriter, out: list[str],
                known: frozenset[_Path], depth: int) -> bool:
    """Append the code of ``node``; True when it dispatches on a key."""
    pad = "    " * depth
    if node.path is None or node.rest is None:
        for row in node.rows:
            test = writer.condition(row.condition, known)
            out.append(f"{pad}add({row.order})" if test is None
                       else f"{pad}if {test}:\n{pad}    add({row.order})")
        return False
    _write_node(node.rest, writer, out, known, depth)
    out.extend(pad + line for line in writer.compute_key(node.path))
    name = writer.key(node.path)[1]
    _write_groups(list(node.groups.items()), node.path, name, writer, out, known, depth)
    return True


def _write_groups(groups: list[tuple[str, _IndexNode]], path: _Path, key: str,
                  writer: SourceWriter, out: list[str], known: frozenset[_Path],
                  depth: int) -> None:
    """Dispatch on the key: one comparison for one value, else a dict lookup to the
    group's number and a binary search over the numbers (log n comparisons)."""
    pad = "    " * depth
    inner = known | {path}
    if len(groups) == 1:
        value, node = groups[0]
        out.append(f"{pad}if {key} == {writer.constant(value)}:")
        _write_branch(node, writer, out, inner, depth + 1)
        return
    numbers = writer.constant({value: n for n, (value, _) in enumerate(groups)})
    group = f"_g{len(out)}"
    out.append(f"{pad}{group} = {numbers}.get({key}, -1)")
    out.append(f"{pad}if {group} >= 0:")
    _write_search(groups, 0, len(groups), group, writer, out, inner, depth + 1)


def _write_search(groups: list[tuple[str, _IndexNode]], low: int, high: int, group: str,
                  writer: SourceWriter, out: list[str], known: frozenset[_Path],
                  depth: int) -> None:
    pad = "    " * depth
    if high - low == 1:
        _write_branch(groups[low][1], writer, out, known, depth)
        return
    middle = (low + high) // 2
    out.append(f"{pad}if {group} < {middle}:")
    _write_search(groups, low, middle, group, writer, out, known, depth + 1)
    out.append(f"{pad}else:")
    _write_search(groups, middle, high, group, writer, out, known, depth + 1)


def _write_branch(node: _IndexNode, writer: SourceWriter, out: list[str],
                  known: frozenset[_Path], depth: int) -> None:
    """A branch of a dispatch: what it computes is not certain after it."""
    before, ready = len(out), set(writer.ready)
    _write_node(node, writer, out, known, depth)
    writer.ready = ready
    if len(out) == before:
        out.append("    " * depth + "pass")
