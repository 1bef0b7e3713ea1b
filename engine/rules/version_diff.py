"""What changed between two rule-set versions, in the terms a reviewer approves them in.

The diff is semantic, not textual: route rows are compared by row id, mapping entries by
the canonical path they fill, lookup-table entries by code, concept-map rows by their v2
code (and condition), exception policies by the connections and error classes they
cover, connections by id, rule-test cases by id. A document is known by its identity
(its ``id``; a lookup table's or concept map's table id), so a file that moved but kept
its id diffs as a rename with its changes, not as a removal and an addition. Field
changes inside an entry are paths into it (``when.all[0].value``, ``to[1]``); fields that
are sets (a data scope, a row's message types) are reported as members added and removed.

Everything is sorted, so the same two versions always give the same diff, and swapping
them gives its mirror image (added and removed, before and after, swapped). Pure: both
versions arrive as the dicts :func:`engine.rules.snapshot.to_content` makes.
"""

from __future__ import annotations

import base64
import copy
import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePath
from typing import Any, Literal, NamedTuple

__all__ = [
    "ABSENT", "EntryDiff", "FileDiff", "GroupDiff", "Move", "SetChange", "ValueChange",
    "VersionDiff", "diff_contents", "render_diff",
]

Status = Literal["added", "removed", "changed"]

SECTIONS = ("routes", "mappings", "policies", "catalog", "tests", "files", "other")
"""The sections of a diff, in the order ``as_dict`` and ``render_diff`` give them."""

CONCEPT_MAP = "concept_map"
"""Group kind of a concept-map sheet (``concept_maps`` in the content, not a document)."""


class _Absent(Enum):
    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent.ABSENT
"""The value on the side of a change where the field does not exist (JSON null is a value)."""


# ---- the diff ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueChange:
    """A value at ``path`` (``""``: the whole entry) that differs; ABSENT on the side
    where it does not exist."""

    path: str
    before: Any = ABSENT
    after: Any = ABSENT

    def as_dict(self) -> dict[str, Any]:
        sides = {"before": self.before, "after": self.after}
        return {"path": self.path} | {k: v for k, v in sides.items() if v is not ABSENT}


@dataclass(frozen=True)
class SetChange:
    """Members added to and removed from a field whose order means nothing."""

    path: str
    added: tuple[Any, ...] = ()
    removed: tuple[Any, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "added": list(self.added), "removed": list(self.removed)}


Change = ValueChange | SetChange


@dataclass(frozen=True)
class EntryDiff:
    """One keyed entry of a document (a row, a mapping entry, a policy...): its changes
    when it changed, its whole value when it was added or removed."""

    key: str
    status: Status
    changes: tuple[Change, ...] = ()
    value: Any = ABSENT

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"key": self.key, "status": self.status}
        if self.status == "changed":
            return found | {"changes": [change.as_dict() for change in self.changes]}
        return found | {"value": self.value}


@dataclass(frozen=True)
class Move:
    """A route row that changed place among the rows both versions have; ``before`` and
    ``after`` are its indexes in ``rows``."""

    key: str
    before: int
    after: int

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class GroupDiff:
    """One document (route table, mapping, lookup table, concept map, policy file,
    connection, test file) that was added, removed, renamed or changed."""

    kind: str
    key: str
    status: Status
    path_before: str | None
    path_after: str | None
    settings: tuple[Change, ...] = ()
    entries: tuple[EntryDiff, ...] = ()
    moved: tuple[Move, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "key": self.key, "status": self.status,
            "path": {"before": self.path_before, "after": self.path_after},
            "settings": [change.as_dict() for change in self.settings],
            "entries": [entry.as_dict() for entry in self.entries],
            "moved": [move.as_dict() for move in self.moved],
        }


@dataclass(frozen=True)
class FileDiff:
    """A test message file added, removed or changed; sizes only, never contents."""

    path: str
    status: Status
    bytes_before: int | None
    bytes_after: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status,
                "bytes": {"before": self.bytes_before, "after": self.bytes_after}}


@dataclass(frozen=True)
class VersionDiff:
    """Every difference between two versions, by section, each sorted by identity."""

    routes: tuple[GroupDiff, ...] = ()
    mappings: tuple[GroupDiff, ...] = ()
    policies: tuple[GroupDiff, ...] = ()
    catalog: tuple[GroupDiff, ...] = ()
    tests: tuple[GroupDiff, ...] = ()
    files: tuple[FileDiff, ...] = ()
    other: tuple[GroupDiff, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, section) for section in SECTIONS)

    def groups(self) -> Iterator[GroupDiff]:
        """Every document diff, section by section (files excluded)."""
        for section in SECTIONS:
            if section != "files":
                yield from getattr(self, section)

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            section: [item.as_dict() for item in getattr(self, section)]
            for section in SECTIONS
        }


# ---- how each kind of document is compared -------------------------------------------------


def _document_id(path: str, data: Any) -> str:
    """The document's ``id``; its path when it has none, so it can still be compared."""
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else path


def _table_id(path: str, data: Any) -> str:
    # The same id engine.rules.source gives the table, so mappings' lookups name it.
    value = data.get("id") if isinstance(data, dict) else None
    return str(value or PurePath(path).stem)


def _sheet_id(path: str, data: Any) -> str:
    return PurePath(path).stem


def _path_id(path: str, data: Any) -> str:
    return path


def _by_id(container: str) -> Callable[[int, Any], str]:
    """Entries keyed by their ``id``; by position when one has none (a draft may)."""

    def key(index: int, item: Any) -> str:
        value = item.get("id") if isinstance(item, dict) else None
        return value if isinstance(value, str) and value else f"{container}[{index}]"

    return key


def _policy_key(index: int, item: Any) -> str:
    """What a policy covers: the ambiguity check in exception_policy allows one policy
    per selection, so the selection is its identity (``ehr-fhir / timeout, transport_error``)."""
    if isinstance(item, dict):
        connections, classes = _names(item.get("connections")), _names(item.get("error_classes"))
        if connections and classes:
            return f"{', '.join(connections)} / {', '.join(classes)}"
    return f"policies[{index}]"


def _names(value: Any) -> list[str]:
    """A list of names, sorted; empty when it is not one."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    return []


@dataclass(frozen=True)
class _Shape:
    """How one kind of document is compared: where its keyed entries are, how they are
    keyed, which fields are sets, and whether entry order means something."""

    section: str
    label: str  # names the document in rendered lines: routes/results
    noun: str  # names one entry: row, field, code...
    entries: str | None = None  # the document key that holds the entries
    entry_key: Callable[[int, Any], str] | None = None  # for entries held in a list
    identity: Callable[[str, Any], str] = _document_id
    setting_sets: frozenset[str] = frozenset()
    entry_sets: frozenset[str] = frozenset()
    ordered: bool = False


_SHAPES: Mapping[str, _Shape] = {
    # Every row that holds fires, but in table order, so a reorder is reported as a move.
    "routes": _Shape("routes", "routes", "row", "rows", _by_id("rows"), ordered=True,
                     entry_sets=frozenset({"match.type", "match.event"})),
    "mapping": _Shape("mappings", "mapping", "field", "fields",
                      setting_sets=frozenset({"applies_to", "covers"})),
    "table": _Shape("mappings", "table", "code", "map", identity=_table_id),
    CONCEPT_MAP: _Shape("mappings", "concept-map", "row", "rows", identity=_sheet_id),
    "policies": _Shape("policies", "policies", "policy", "policies", _policy_key,
                       entry_sets=frozenset({"connections", "error_classes"})),
    "connection": _Shape("catalog", "connection", "field",
                         setting_sets=frozenset({"data_scope", "tags", "endpoint.allowed_peers"})),
    # Rule tests compare rows, destinations, held and issues in any order.
    "tests": _Shape("tests", "tests", "case", "cases", _by_id("cases"), entry_sets=frozenset(
        {"expect.rows", "expect.destinations", "expect.held", "expect.issues"})),
}
_KIND_ORDER = {kind: position for position, kind in enumerate(_SHAPES)}


def _shape(kind: str) -> _Shape:
    # A kind this module does not know is still compared, whole, rather than dropped.
    return _SHAPES.get(kind) or _Shape("other", kind, "entry", identity=_path_id)


# ---- diffing -------------------------------------------------------------------------------


def diff_contents(before: Mapping[str, Any], after: Mapping[str, Any]) -> VersionDiff:
    """The semantic differences from version content ``before`` to ``after``."""
    old, new = _identified(before), _identified(after)
    sections: dict[str, list[GroupDiff]] = {section: [] for section in SECTIONS}
    for kind, key in sorted(old.keys() | new.keys(), key=_group_order):
        group = _group_diff(kind, key, old.get((kind, key)), new.get((kind, key)))
        if group is not None:
            sections[_shape(kind).section].append(group)
    files = _file_diffs(before.get("files") or {}, after.get("files") or {})
    return VersionDiff(
        routes=tuple(sections["routes"]), mappings=tuple(sections["mappings"]),
        policies=tuple(sections["policies"]), catalog=tuple(sections["catalog"]),
        tests=tuple(sections["tests"]), files=files, other=tuple(sections["other"]),
    )


def _group_order(identity: tuple[str, str]) -> tuple[int, str, str]:
    kind, key = identity
    return _KIND_ORDER.get(kind, len(_KIND_ORDER)), kind, key


class _Doc(NamedTuple):
    path: str
    kind: str
    data: Any


def _identified(content: Mapping[str, Any]) -> dict[tuple[str, str], _Doc]:
    """Each document (and concept map) under (kind, identity); a repeated identity, which
    only a broken version has, gets a ``#2`` so that nothing is lost."""
    found: dict[tuple[str, str], _Doc] = {}
    for doc in sorted(_documents(content), key=lambda doc: doc.path):
        identity = _shape(doc.kind).identity(doc.path, doc.data)
        taken = {key for kind, key in found if kind == doc.kind}
        found[(doc.kind, _free_key(identity, taken.__contains__))] = doc
    return found


def _documents(content: Mapping[str, Any]) -> list[_Doc]:
    docs = [
        _Doc(str(doc.get("path")), str(doc.get("kind")), doc.get("data"))
        for doc in content.get("documents") or []
    ]
    sheets = content.get("concept_maps") or {}
    return docs + [_Doc(path, CONCEPT_MAP, _sheet_data(text)) for path, text in sheets.items()]


def _free_key(key: str, taken: Callable[[str], bool]) -> str:
    number, free = 1, key
    while taken(free):
        number += 1
        free = f"{key}#{number}"
    return free


def _group_diff(kind: str, key: str, before: _Doc | None, after: _Doc | None) -> GroupDiff | None:
    shape = _shape(kind)
    old, new = _split(shape, before), _split(shape, after)
    settings = _changes(old.settings, new.settings, "", shape.setting_sets)
    entries = _entry_diffs(old.entries, new.entries, shape.entry_sets)
    moved = _moves(list(old.entries), list(new.entries)) if shape.ordered else ()
    path_before = before.path if before else None
    path_after = after.path if after else None
    if before and after and path_before == path_after and not (settings or entries or moved):
        return None
    return GroupDiff(kind, key, _status(before, after), path_before, path_after,
                     tuple(settings), entries, moved)


def _status(before: object, after: object) -> Status:
    return "added" if before is None else "removed" if after is None else "changed"


class _Parts(NamedTuple):
    settings: dict[str, Any]
    entries: dict[str, Any]


def _split(shape: _Shape, doc: _Doc | None) -> _Parts:
    """A document as its settings (compared field by field) and its keyed entries."""
    if doc is None:
        return _Parts({}, {})
    data = doc.data if isinstance(doc.data, dict) else {"(document)": doc.data}
    settings = {key: value for key, value in data.items() if key != shape.entries}
    held = data.get(shape.entries) if shape.entries else None
    if isinstance(held, dict):
        return _Parts(settings, {str(key): value for key, value in held.items()})
    if isinstance(held, list) and shape.entry_key:
        return _Parts(settings, _keyed(held, shape.entry_key))
    if shape.entries in data:  # not a container that can be keyed: compare it whole
        settings[shape.entries] = held
    return _Parts(settings, {})


def _keyed(items: list[Any], key: Callable[[int, Any], str]) -> dict[str, Any]:
    keyed: dict[str, Any] = {}
    for index, item in enumerate(items):
        keyed[_free_key(key(index, item), keyed.__contains__)] = item
    return keyed


def _entry_diffs(
    old: dict[str, Any], new: dict[str, Any], sets: frozenset[str]
) -> tuple[EntryDiff, ...]:
    diffs = []
    for key in sorted(old.keys() | new.keys()):
        if key not in new:
            diffs.append(EntryDiff(key, "removed", value=copy.deepcopy(old[key])))
        elif key not in old:
            diffs.append(EntryDiff(key, "added", value=copy.deepcopy(new[key])))
        elif changes := _changes(old[key], new[key], "", sets):
            diffs.append(EntryDiff(key, "changed", tuple(changes)))
    return tuple(diffs)


# ---- field changes -------------------------------------------------------------------------


def _changes(before: Any, after: Any, path: str, sets: frozenset[str]) -> list[Change]:
    """The leaves that differ under ``path``; whole values where the shapes differ."""
    if path in sets:
        return _set_changes(before, after, path)
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            change
            for key in sorted(before.keys() | after.keys(), key=str)
            for change in _changes(before.get(key, ABSENT), after.get(key, ABSENT),
                                   f"{path}.{key}" if path else str(key), sets)
        ]
    if isinstance(before, list) and isinstance(after, list):
        return [
            change
            for index in range(max(len(before), len(after)))
            for change in _changes(_item(before, index), _item(after, index),
                                   f"{path}[{index}]", sets)
        ]
    if _same(before, after):
        return []
    return [ValueChange(path, copy.deepcopy(before), copy.deepcopy(after))]


def _item(items: list[Any], index: int) -> Any:
    return items[index] if index < len(items) else ABSENT


def _same(before: Any, after: Any) -> bool:
    # 2 and 2.0 are the same number, but true is not 1 (Python says it is).
    return isinstance(before, bool) == isinstance(after, bool) and before == after


def _set_changes(before: Any, after: Any, path: str) -> list[Change]:
    old, new = _members(before), _members(after)
    if old is None or new is None:  # not a list of names after all: compare it as written
        return _changes(before, after, path, frozenset())
    added = tuple(sorted((m for m in new if m not in old), key=_member_order))
    removed = tuple(sorted((m for m in old if m not in new), key=_member_order))
    return [SetChange(path, added, removed)] if added or removed else []


def _members(value: Any) -> tuple[Any, ...] | None:
    """A set field's members; a single name stands for a list of one, as routes allow."""
    if value is ABSENT or value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return tuple(dict.fromkeys(value))
    return None


def _member_order(member: Any) -> tuple[str, str]:
    return type(member).__name__, str(member)


# ---- row moves -----------------------------------------------------------------------------


def _moves(before: Sequence[str], after: Sequence[str]) -> tuple[Move, ...]:
    """The fewest rows that explain a reorder; rows only added or removed are not moves,
    so inserting one row does not report every row after it as moved."""
    common = set(before) & set(after)
    old = [key for key in before if key in common]
    new_index = {key: index for index, key in enumerate(k for k in after if k in common)}
    if all(new_index[key] == index for index, key in enumerate(old)):
        return ()
    stayed = _stayed(old, new_index)
    return tuple(
        Move(key, before.index(key), after.index(key)) for key in sorted(common - stayed)
    )


def _stayed(old: Sequence[str], new_index: Mapping[str, int]) -> set[str]:
    """The largest set of rows in the same relative order in both versions.

    Several sets may be equally large (swap two rows: either one moved). Each candidate
    is weighed by its size, then by one bit per row ranked by id, so that exactly one
    set wins and it is the same set whichever version comes first: the diff of the
    swapped versions is then the mirror image.
    """
    rank = {key: position for position, key in enumerate(sorted(old))}
    best: list[tuple[int, int]] = []  # (size, rows as bits) of the best chain ending here
    previous: list[int | None] = []
    for i, key in enumerate(old):
        before = [j for j in range(i) if new_index[old[j]] < new_index[key]]
        link = max(before, key=best.__getitem__, default=None)
        size, bits = (0, 0) if link is None else best[link]
        best.append((size + 1, bits | 1 << rank[key]))
        previous.append(link)
    stayed = set()
    at: int | None = max(range(len(old)), key=best.__getitem__)
    while at is not None:
        stayed.add(old[at])
        at = previous[at]
    return stayed


# ---- concept maps and files ----------------------------------------------------------------


def _sheet_data(text: Any) -> dict[str, Any]:
    """A v2-to-FHIR concept-map sheet as a document: its two header rows, and its code
    rows keyed by v2 code (and condition, since a code may map differently under one)."""
    if not isinstance(text, str):
        return {"(document)": text}
    cells = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
    header = [_trimmed(row) for row in cells[:2]]
    labels = _column_labels(header)
    rows: dict[str, Any] = {}
    for row in cells[2:]:
        if any(row):
            named = {_label(labels, i): cell for i, cell in enumerate(row) if cell}
            rows[_free_key(_sheet_row_key(row), rows.__contains__)] = named
    return {"header": header, "rows": rows}


def _trimmed(row: list[str]) -> list[str]:
    """A header row without its trailing empty cells, which only pad it to the sheet's width."""
    while row and not row[-1]:
        row = row[:-1]
    return row


def _sheet_row_key(row: Sequence[str]) -> str:
    code = row[0] or "(no code)"
    condition = next((cell for cell in row[3:6] if cell), None)
    return f"{code} if {condition}" if condition else code


def _column_labels(header: Sequence[Sequence[str]]) -> list[str]:
    """``HL7 FHIR Code`` for a column: its group heading (which spans the columns after
    it) and its name; ``column N`` when it has no name."""
    groups, names = [*header, [], []][:2]
    labels: list[str] = []
    group = ""
    for index in range(max(len(groups), len(names))):
        group = _cell(groups, index) or group
        name = _cell(names, index)
        label = f"{group} {name}".strip() if name else f"column {index + 1}"
        labels.append(label if label not in labels else f"{label} (column {index + 1})")
    return labels


def _cell(row: Sequence[str], index: int) -> str:
    return row[index] if index < len(row) else ""


def _label(labels: Sequence[str], index: int) -> str:
    return labels[index] if index < len(labels) else f"column {index + 1}"


def _file_diffs(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[FileDiff, ...]:
    diffs = []
    for path in sorted(before.keys() | after.keys()):
        old, new = _decoded(before.get(path)), _decoded(after.get(path))
        if old != new:
            diffs.append(FileDiff(path, _status(old, new), _size(old), _size(new)))
    return tuple(diffs)


def _decoded(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _size(data: bytes | None) -> int | None:
    return None if data is None else len(data)


# ---- rendering -----------------------------------------------------------------------------


def render_diff(diff: VersionDiff) -> str:
    """The diff as lines a person reads, one change per line, each naming its document:
    ``routes/results: row normal-results-to-ehr changed: to[0] 'ehr-fhir' -> 'clinic-north'``."""
    lines = [line for group in diff.groups() for line in _group_lines(group)]
    lines += [_file_line(file) for file in diff.files]
    return "\n".join(lines) if lines else "no differences"


def _group_lines(group: GroupDiff) -> list[str]:
    shape = _shape(group.kind)
    label = f"{shape.label}/{group.key}"
    lines = []
    if group.status != "changed":
        lines.append(f"{label}: {group.status} ({group.path_after or group.path_before})")
    elif group.path_before != group.path_after:
        lines.append(f"{label}: renamed {group.path_before} -> {group.path_after}")
    lines += [f"{label}: {_change_text(change)}" for change in group.settings]
    for entry in group.entries:
        lines += _entry_lines(f"{label}: {shape.noun} {entry.key}", entry)
    lines += [
        f"{label}: {shape.noun} {move.key} moved: {shape.entries}[{move.before}] -> "
        f"{shape.entries}[{move.after}]"
        for move in group.moved
    ]
    return lines


def _entry_lines(prefix: str, entry: EntryDiff) -> list[str]:
    if entry.status != "changed":
        return [f"{prefix} {entry.status}: {_shown(entry.value)}"]
    return [f"{prefix} changed: {_change_text(change)}" for change in entry.changes]


def _change_text(change: Change) -> str:
    if isinstance(change, SetChange):
        parts = [
            f"{verb} {', '.join(_shown(member) for member in members)}"
            for verb, members in (("added", change.added), ("removed", change.removed))
            if members
        ]
        return f"{change.path} {'; '.join(parts)}"
    text = f"{_shown(change.before)} -> {_shown(change.after)}"
    return f"{change.path} {text}" if change.path else text


def _shown(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _file_line(file: FileDiff) -> str:
    if file.status == "changed":
        return f"file {file.path}: changed ({file.bytes_before} -> {file.bytes_after} bytes)"
    size = file.bytes_after if file.status == "added" else file.bytes_before
    return f"file {file.path}: {file.status} ({size} bytes)"

