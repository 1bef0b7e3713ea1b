"""Rule tests: YAML cases (message in -> expected canonical fields, rows, destinations,
tasks) run through the pure core, each reported as pass or fail with its differences.
A case with ``outcome`` routes the outcome event of the task its message's route row
makes, decided as the case says, instead of the message."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.errors import SwitchboardError
from engine.hl7v2 import parse
from engine.model.outcome_event import Origin, OutcomeEvent
from engine.rules.rule_set import Outcome, RuleSet
from engine.rules.source import RuleSource, message_file_key

# Where the console's test panel saves the cases it makes, and their message files.
SAVED_TESTS = "rules/tests/test-panel.yaml"
SAVED_MESSAGES = "messages/test-panel"
CASE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")
_INDEXED_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")
_MISSING = object()
# An outcome case's decision and message need a time: a fixed one, so results repeat.
_DECIDED_AT = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CaseResult:
    file: str
    case: str
    differences: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.differences


def run_rule_tests(rule_set: RuleSet, source: RuleSource) -> list[CaseResult]:
    results = []
    for doc in source.of_kind("tests"):
        for case in doc.data.get("cases", []):
            results.append(CaseResult(doc.path, str(case["id"]), tuple(_run(rule_set, source,
                                                                                doc.path, case))))
    return results


def _run(rule_set: RuleSet, source: RuleSource, path: str, case: Mapping[str, Any]) -> list[str]:
    outcome = case_outcome(rule_set, source, path, case)
    if isinstance(outcome, str):
        return [outcome]
    return compare(outcome, case["expect"])


def case_outcome(rule_set: RuleSet, source: RuleSource, path: str,
                 case: Mapping[str, Any]) -> Outcome | str:
    """What the rules make of a case's message, or of the outcome of its task; or why
    the case cannot be run."""
    raw = case_message(source, path, case)
    if raw is None:
        return f"message file {case['message'].get('file')} was not found"
    try:
        if "outcome" not in case:
            return rule_set.process(parse(raw))
        event = _case_event(rule_set, case["outcome"], raw)
        if isinstance(event, str):
            return f"outcome: {event}"
        return rule_set.outcome(*event.conversion(rule_set.mapper, rule_set.charset_of))
    except SwitchboardError as exc:
        return f"the message cannot be processed: {exc}"


def _case_event(rule_set: RuleSet, spec: Mapping[str, Any], raw: bytes) -> OutcomeEvent | str:
    """The outcome event a case describes, or why no task could be decided so."""
    row = next((r for r in rule_set.routes.rows if r.id == spec["row"]), None)
    if row is None:
        return f"there is no route row {spec['row']!r}"
    checkpoint = row.checkpoint
    if checkpoint is None:
        return f"row {row.id} makes no task: it has no checkpoint"
    hold = checkpoint.mode == "hold"
    decided = spec.get("outcome") or ("approved" if hold else "completed")
    if hold == (decided == "completed"):
        return ("a hold task is approved or rejected, not completed" if hold else
                "a notify task is completed, not approved or rejected")
    state, states = spec.get("state"), checkpoint.states
    if state is not None and not states:
        return f"row {row.id} names no states, so its task takes none"
    if state is not None and state not in states:
        return f"{state!r} is not one of row {row.id}'s states: {', '.join(states)}"
    if state is None and states:
        return f"row {row.id}'s task needs a state: one of {', '.join(states)}"
    origin = Origin("rule-test", "rule-test", "hl7v2", _DECIDED_AT, raw)
    return OutcomeEvent(1, checkpoint.queue, checkpoint.kind, checkpoint.mode, row.id, decided,
                        _DECIDED_AT, state, spec.get("reason"), spec.get("decided_by_role"),
                        origin)


def case_message(source: RuleSource, path: str, case: Any) -> bytes | None:
    """The message a rule-test case feeds the rules: its file's bytes, or its inline
    text with HL7's segment separator; None when there is none to be had."""
    spec = case.get("message") if isinstance(case, Mapping) else None
    if not isinstance(spec, Mapping):
        return None
    if "file" in spec:
        return source.files.get(message_file_key(path, str(spec["file"])))
    if "inline" in spec:
        return re.sub(r"\r\n|\n", "\r", str(spec["inline"])).encode()
    return None


def compare(outcome: Outcome, expect: Mapping[str, Any]) -> list[str]:
    """Every way ``outcome`` differs from ``expect``, as readable lines. ``rows``,
    ``destinations``, ``held`` and ``tasks`` are exact; under ``includes`` they are what
    must be among the outcome's, under ``excludes`` what must not be (a template's tests
    use those, as they hold whatever routes the draft already has)."""
    found: list[str] = []
    for path, expected in (expect.get("canonical") or {}).items():
        actual = read_indexed(outcome.conversion.record, str(path))
        if actual is _MISSING:
            found.append(f"canonical {path}: expected {expected!r}, but it is absent")
        elif actual != expected:
            found.append(f"canonical {path}: expected {expected!r}, got {actual!r}")
    actual = _outcome_sets(outcome)
    for name, got in actual.items():
        if name in expect:
            _difference(found, name, _expected_set(name, expect[name], outcome), got)
        if name in (expect.get("includes") or {}):
            missing = _expected_set(name, expect["includes"][name], outcome) - got
            if missing:
                found.append(f"{name}: missing {', '.join(sorted(missing))}")
        if name in (expect.get("excludes") or {}):
            present = _expected_set(name, expect["excludes"][name], outcome) & got
            if present:
                found.append(f"{name}: unexpected {', '.join(sorted(present))}")
    if "issues" in expect:
        _difference(found, "issues", set(expect["issues"]),
                    {str(i) for i in outcome.conversion.issues})
    return found


def _outcome_sets(outcome: Outcome) -> dict[str, set[str]]:
    decision = outcome.decision
    return {
        "rows": {row.id for row in decision.rows},
        "destinations": set(decision.destinations),
        "held": {d.destination for d in outcome.deliveries if d.held_by},
        "tasks": {_task_key(t.queue, t.kind, t.mode) for t in decision.tasks},
    }


def _expected_set(name: str, expected: Iterable[Any], outcome: Outcome) -> set[str]:
    if name != "tasks":
        return {str(value) for value in expected}
    tasks = outcome.decision.tasks
    return {_task_key(t["queue"], t["kind"], t.get("mode", _mode_of(t, tasks)))
            for t in expected}


def _mode_of(expected: Mapping[str, Any], tasks: Iterable[Any]) -> str:
    """An expected task that names no mode matches either mode."""
    for task in tasks:
        if task.queue == expected["queue"] and task.kind == expected["kind"]:
            return str(task.mode)
    return "?"


def _task_key(queue: str, kind: str, mode: str) -> str:
    return f"{queue}/{kind} ({mode})"


def _difference(found: list[str], name: str, expected: set[str], actual: set[str]) -> None:
    missing, unexpected = sorted(expected - actual), sorted(actual - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected)}")
        found.append(f"{name}: {'; '.join(parts)}")


def read_indexed(record: Any, path: str) -> Any:
    """The value at a canonical path with 0-based indexes (``results[0].code``), or a
    sentinel when absent."""
    node = record
    for part in path.split("."):
        match = _INDEXED_STEP.fullmatch(part)
        if match is None or not isinstance(node, Mapping) or match.group(1) not in node:
            return _MISSING
        node = node[match.group(1)]
        for index in re.findall(r"\[(\d+)\]", match.group(2)):
            if not isinstance(node, list) or int(index) >= len(node):
                return _MISSING
            node = node[int(index)]
    return node


class CaseExists(SwitchboardError):
    """A saved rule test would replace a case of the same id."""


def with_saved_case(content: Mapping[str, Any], case_id: str, raw: bytes,
                    expect: Mapping[str, Any]) -> dict[str, Any]:
    """``content`` with a case ``case_id`` added to the test panel's test document: its
    message kept as a file beside the others, ``expect`` what it must do."""
    documents = list(content["documents"])
    found = next((d for d in documents if d["path"] == SAVED_TESTS), None)
    data: dict[str, Any] = dict(found["data"]) if found else {
        "id": "test-panel", "description": "Messages tried in the test panel, with "
        "the outcome they had when they were saved.", "cases": []}
    if any(isinstance(case, Mapping) and str(case.get("id")) == case_id
           for case in data["cases"]):
        raise CaseExists(f"this draft has a rule test {case_id!r} already",
                         hint="Name this one differently")
    file = f"{SAVED_MESSAGES}/{case_id}.hl7"
    data["cases"] = [*data["cases"],
                     {"id": case_id, "message": {"file": file}, "expect": dict(expect)}]
    documents = [d for d in documents if d["path"] != SAVED_TESTS]
    documents.append({"path": SAVED_TESTS, "kind": "tests", "data": data})
    files = {**content.get("files", {}),
             message_file_key(SAVED_TESTS, file): base64.b64encode(raw).decode("ascii")}
    return {**content, "documents": sorted(documents, key=lambda d: str(d["path"])),
            "files": dict(sorted(files.items()))}
