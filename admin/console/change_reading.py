"""A rule-set version diff (engine.rules.version_diff, as ``as_dict`` gives it) as the
review screens show it: one block per document, one line per change, each with what it
was before and what it is after, side by side, numbered so a reviewer can step from
one change to the next. Route rows are named as rows, mapping fields by the canonical
target they fill, set-like fields (a catalog data scope) as members added and removed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

SECTIONS = {"routes": "Route tables", "mappings": "Mappings and code tables",
            "policies": "Exception policies", "catalog": "Catalog",
            "tests": "Rule tests", "other": "Other documents"}
KINDS = {"routes": "Route table", "mapping": "Mapping", "table": "Code table",
         "concept_map": "Concept map", "policies": "Exception policies",
         "connection": "Connection", "tests": "Rule tests"}
NOUNS = {"routes": "row", "mapping": "target", "table": "code", "concept_map": "code",
         "policies": "policy", "tests": "case"}


@dataclass(frozen=True)
class Line:
    """One change: ``before`` and ``after`` are shown as written (None: not there);
    a set-like field has the members ``removed`` and ``added`` instead."""

    number: int
    what: str
    status: str  # added, removed, changed, moved, renamed, members
    before: str | None = None
    after: str | None = None
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()


@dataclass
class Block:
    """One document that changed, with its lines."""

    section: str
    title: str
    status: str
    path: str
    lines: list[Line] = field(default_factory=list)


@dataclass
class _Counter:
    value: int = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def side_by_side(changes: dict[str, list[dict[str, Any]]]) -> list[Block]:
    """Every change of a diff, in its sections' order, numbered from 1."""
    count = _Counter()
    blocks = [_block(section, group, count) for section in SECTIONS
              for group in changes.get(section, [])]
    files = changes.get("files", [])
    if files:
        blocks.append(Block("files", "Test message files", "changed", "rules/tests",
                            [_file_line(file, count) for file in files]))
    return blocks


def change_count(blocks: list[Block]) -> int:
    return sum(len(block.lines) for block in blocks)


def _block(section: str, group: dict[str, Any], count: _Counter) -> Block:
    kind, paths = group["kind"], group["path"]
    noun = NOUNS.get(kind, "entry")
    block = Block(SECTIONS[section], f"{KINDS.get(kind, kind)} {group['key']}",
                  group["status"], paths["after"] or paths["before"] or "")
    if group["status"] == "changed" and paths["before"] != paths["after"]:
        block.lines.append(Line(count.next(), "file", "renamed", paths["before"],
                                paths["after"]))
    block.lines += [_change_line(change["path"] or "(whole)", change, count)
                    for change in group["settings"]]
    for entry in group["entries"]:
        block.lines += _entry_lines(f"{noun} {entry['key']}", entry, count)
    block.lines += [Line(count.next(), f"{noun} {move['key']}", "moved",
                         f"position {move['before'] + 1}", f"position {move['after'] + 1}")
                    for move in group["moved"]]
    return block


def _entry_lines(name: str, entry: dict[str, Any], count: _Counter) -> list[Line]:
    if entry["status"] == "added":
        return [Line(count.next(), name, "added", None, shown(entry["value"]))]
    if entry["status"] == "removed":
        return [Line(count.next(), name, "removed", shown(entry["value"]), None)]
    return [_change_line(f"{name} · {change['path']}" if change["path"] else name, change,
                         count) for change in entry["changes"]]


def _change_line(what: str, change: dict[str, Any], count: _Counter) -> Line:
    if "added" in change:  # a set-like field: members, not positions
        return Line(count.next(), what, "members",
                    removed=tuple(shown(m) for m in change["removed"]),
                    added=tuple(shown(m) for m in change["added"]))
    before = shown(change["before"]) if "before" in change else None
    after = shown(change["after"]) if "after" in change else None
    status = "added" if before is None else "removed" if after is None else "changed"
    return Line(count.next(), what, status, before, after)


def _file_line(file: dict[str, Any], count: _Counter) -> Line:
    sizes = file["bytes"]
    return Line(count.next(), file["path"], file["status"],
                None if sizes["before"] is None else f"{sizes['before']:,} bytes",
                None if sizes["after"] is None else f"{sizes['after']:,} bytes")


def shown(value: Any) -> str:
    """A value as its rule file writes it (YAML), so a reviewer reads it as authored."""
    if isinstance(value, str):
        return value if value.strip() else repr(value)
    if value is None or isinstance(value, bool | int | float):
        return str(yaml.safe_dump(value)).removesuffix("\n...\n").strip()
    return str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True,
                              default_flow_style=False, width=60)).rstrip()
