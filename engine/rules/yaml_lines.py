"""Where a finding's location (``rows[3].when.value``, as engine.rules.findings writes
it) stands in a YAML text: its 1-based line, so an editor can show each problem on the
line it concerns. A location the text does not hold is placed at its nearest ancestor
that it does (a missing key at the mapping that lacks it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

DOCUMENT = "(document)"
_LAST_STEP = re.compile(r"(\[\d+\]|\.[^.\[]+)$")


@dataclass(frozen=True)
class YamlProblem:
    """Text that is not YAML at all: where the reader stopped, and why."""

    line: int
    problem: str


def node_lines(text: str) -> dict[str, int]:
    """Every location in ``text`` -> the line its value starts on (a mapping key's
    line for the key's value, so a value on the next lines still points at its key)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    found: dict[str, int] = {DOCUMENT: 1}
    if root is not None:
        _collect(root, "", root.start_mark.line + 1, found)
    return found


def _collect(node: yaml.Node, location: str, line: int, found: dict[str, int]) -> None:
    if location:
        found[location] = line
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = f"{location}.{key.value}" if location else str(key.value)
            _collect(value, child, key.start_mark.line + 1, found)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect(item, f"{location}[{index}]", item.start_mark.line + 1, found)


def line_of(location: str, lines: dict[str, int]) -> int:
    """The line of ``location``, or of its nearest ancestor in ``lines``."""
    while location and location not in lines:
        location = _LAST_STEP.sub("", location)
    return lines.get(location or DOCUMENT, 1)


def yaml_problem(text: str) -> YamlProblem | None:
    """Why ``text`` cannot be read as one YAML document, with the line; None if it can."""
    try:
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        words = " ".join(str(part) for part in (error.context, error.problem) if part)
        return YamlProblem(mark.line + 1 if mark else 1, words or "not readable YAML")
    except yaml.YAMLError as error:
        return YamlProblem(1, str(error))
    return None
