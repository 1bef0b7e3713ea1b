"""The linter: what the JSON Schemas cannot see. The GUI's save button, the CLI and CI
run the same checks. Every finding names the file, the YAML location (0-based list
indexes) and the problem, and carries a category:

- ``schema``: the document breaks its JSON Schema (or is not readable YAML);
- ``unknown-field``: a canonical path the model does not define;
- ``bad-regex``: a ``matches`` pattern that does not compile;
- ``unknown-destination``: a connection id (or task queue) the catalog does not hold;
- ``incomplete-destination``: a destination without owner, scope or recovery procedure;
- ``duplicate-row``: a row id used twice, or two rows that say the same thing;
- ``never-holds``: a row whose conditions contradict each other or its match;
- ``identifier-in-de-identified``: a de-identified connection whose scope admits a
  direct identifier;
- ``compile``: what only compiling finds (a lookup table that does not exist, two
  policies claiming the same failure), reported once everything above is clean;
- ``unknown-command``: a recovery procedure that tells someone to run a ``switchboard``
  command that does not exist;
- ``task-access``: a task queue whose ``task_access`` names no role that may act on its
  tasks, or an escalation to a role that may not act on the escalations queue: such
  tasks would wait for an admin to notice them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from engine.command_names import COMMANDS
from engine.model.canonical import canonical_paths
from engine.model.canonical_path import CanonicalPathError, parse_canonical_path
from engine.rules.catalog_entry import Connection, Transport, direct_identifiers_admitted
from engine.rules.exception_policy import ESCALATION_QUEUE
from engine.rules.findings import Finding
from engine.rules.rule_set import RuleSetError, compile_rule_set, schema_findings
from engine.rules.source import Document, RuleSource
from engine.security.roles import Role
from engine.security.task_access import TaskRules

# A command a recovery procedure names, written as code: `switchboard status`. Not
# "switchboard.example.org", nor the hospital's telephone switchboard ("call the
# switchboard operator"), which plain words name.
_COMMAND = re.compile(r"`switchboard[ \t]+([a-z][a-z-]*)[^`]*`")


def lint(source: RuleSource) -> list[Finding]:
    """Every finding for ``source``, sorted by file and location."""
    findings = schema_findings(source)
    broken = {f.file for f in findings}
    # Semantic checks only read documents whose shape is right.
    usable = [doc for doc in source.documents if doc.path not in broken]
    connections = _connections(usable)
    for doc in usable:
        if doc.kind == "routes":
            findings += _lint_routes(doc, connections)
        elif doc.kind == "connection":
            findings += _lint_connection(doc)
        elif doc.kind == "mapping":
            findings += _lint_mapping(doc)
        elif doc.kind == "policies":
            findings += _lint_policies(doc, connections)
    findings += _duplicate_rows([d for d in usable if d.kind == "routes"])
    if not findings:
        # What only compiling finds: a mapping path or table that does not exist, an
        # ambiguous policy, a broken catalog entry.
        findings += _compile_findings(source)
    return sorted(set(findings))


def _compile_findings(source: RuleSource) -> list[Finding]:
    try:
        compile_rule_set(source)
    except RuleSetError as exc:
        return list(exc.findings)
    return []


def _connections(documents: list[Document]) -> dict[str, Connection]:
    found = {}
    for doc in documents:
        if doc.kind == "connection":
            connection = Connection.from_dict(doc.data)
            found[connection.id] = connection
    return found


# ---- canonical paths -------------------------------------------------------------------


def _unknown_field(path: Any, scope: str | None = None) -> str | None:
    """Why ``path`` is not a canonical field, or None when it is one. In a scope, ``path``
    is relative to the items of the list ``scope``."""
    try:
        steps = parse_canonical_path(str(path))
        items = parse_canonical_path(scope) if scope is not None else ()
    except CanonicalPathError as exc:
        return exc.reason
    if items and items not in canonical_paths():
        return None  # the scope's own list is reported, not every path under it
    if (*items, *steps) not in canonical_paths():
        where = "the canonical model" if scope is None else f"the items of {scope}"
        return f"{path!r} is not a field of {where}"
    return None


# ---- routes ----------------------------------------------------------------------------


def _lint_routes(doc: Document, connections: Mapping[str, Connection]) -> list[Finding]:
    findings = []
    for index, row in enumerate(doc.data.get("rows", [])):
        where = f"rows[{index}]"
        for location, condition, scope in _leaf_conditions(row.get("when"), f"{where}.when"):
            findings += _lint_condition(doc.path, location, condition, scope)
        for position, dest in enumerate(row.get("to", [])):
            findings += _lint_destination(doc.path, f"{where}.to[{position}]", dest, connections)
        checkpoint = row.get("checkpoint")
        if checkpoint:
            findings += _lint_queue(doc.path, f"{where}.checkpoint.queue",
                                    checkpoint.get("queue"), connections)
        reason = _never_holds(row)
        if reason:
            findings.append(Finding(doc.path, where, f"row '{row.get('id')}' can never fire: "
                                    f"{reason}", "never-holds"))
    return findings


_Leaves = Iterator[tuple[str, Mapping[str, Any], str | None]]


def _leaf_conditions(condition: Any, location: str, scope: str | None = None) -> _Leaves:
    """Each leaf with its location and the list path its scope tests items of (if any);
    a scope's list is yielded too, as ``{of: path}`` at its own location."""
    if not isinstance(condition, Mapping):
        return
    for group in ("all", "any"):
        if group in condition:
            for index, child in enumerate(condition[group]):
                yield from _leaf_conditions(child, f"{location}.{group}[{index}]", scope)
            return
    if "not" in condition:
        yield from _leaf_conditions(condition["not"], f"{location}.not", scope)
        return
    for kind in ("some", "every"):
        if kind in condition:
            body = condition[kind]
            yield f"{location}.{kind}.of", {"of": body["of"]}, scope
            yield from _leaf_conditions(body["where"], f"{location}.{kind}.where", body["of"])
            return
    yield location, condition, scope


def _lint_condition(file: str, location: str, condition: Mapping[str, Any],
                    scope: str | None) -> list[Finding]:
    findings = []
    for key, place in (("field", f"{location}.field"), ("of", location)):
        reason = _unknown_field(condition[key], scope) if key in condition else None
        if reason:
            findings.append(Finding(file, place, reason, "unknown-field"))
    if condition.get("op") == "matches":
        try:
            re.compile(str(condition.get("value")))
        except re.error as exc:
            findings.append(Finding(file, f"{location}.value",
                                    f"regular expression does not compile: {exc}", "bad-regex"))
    return findings


def _lint_destination(file: str, location: str, dest: Any,
                      connections: Mapping[str, Connection]) -> list[Finding]:
    connection = connections.get(str(dest))
    if connection is None:
        return [Finding(file, location, f"connection '{dest}' is not in the catalog",
                        "unknown-destination")]
    if connection.direction == "inbound":
        return [Finding(file, location, f"connection '{dest}' is inbound only",
                        "unknown-destination")]
    return [
        Finding(file, location, f"connection '{dest}' has no {missing}", "incomplete-destination")
        for missing in connection.missing_for_destination()
    ]


def _lint_queue(file: str, location: str, queue: Any,
                connections: Mapping[str, Connection]) -> list[Finding]:
    connection = connections.get(str(queue))
    if connection is None or connection.transport != "task-queue":
        return [Finding(file, location, f"task queue '{queue}' is not a task-queue connection "
                        "in the catalog", "unknown-destination")]
    return _lint_destination(file, location, queue, connections)


def _duplicate_rows(documents: list[Document]) -> list[Finding]:
    findings = []
    ids: dict[str, str] = {}
    bodies: dict[str, str] = {}
    for doc in documents:
        for index, row in enumerate(doc.data.get("rows", [])):
            where = f"rows[{index}]"
            row_id = str(row.get("id"))
            if row_id in ids:
                findings.append(Finding(doc.path, f"{where}.id", f"row id '{row_id}' is already "
                                        f"used at {ids[row_id]}", "duplicate-row"))
            ids.setdefault(row_id, f"{doc.path}: {where}")
            body = json.dumps({k: v for k, v in row.items() if k not in ("id", "description")},
                              sort_keys=True)
            if body in bodies:
                findings.append(Finding(doc.path, where, f"row '{row_id}' repeats {bodies[body]}",
                                        "duplicate-row"))
            bodies.setdefault(body, f"{doc.path}: {where} ('{row_id}')")
    return findings


# ---- conditions that can never hold ----------------------------------------------------

_ORDER = {"lt": (-1,), "le": (-1, 0), "gt": (1,), "ge": (1, 0)}


def _never_holds(row: Mapping[str, Any]) -> str | None:
    """A reason the row's conditions contradict each other or its match, if one is
    visible without data: only scalar paths (no [*]) in top-level all groups are read,
    and those of one item in a scope in them."""
    required: list[Mapping[str, Any]] = []
    _collect_required(row.get("when"), required)
    match = row.get("match") or {}
    for key in ("type", "event"):
        if key in match:
            values = match[key] if isinstance(match[key], list) else [match[key]]
            required.append({"field": f"message.{key}", "op": "in", "value": values})
    reason = _contradicted(required)
    for condition in required:
        for kind in ("some", "every"):
            if kind in condition and reason is None:
                scoped: list[Mapping[str, Any]] = []
                _collect_required(condition[kind]["where"], scoped)
                reason = _contradicted(scoped, f" of one {condition[kind]['of']} item")
    return reason


def _contradicted(required: list[Mapping[str, Any]], of_item: str = "") -> str | None:
    """The first contradiction among ``required`` on one scalar path; ``of_item`` words
    a scope's paths (" of one results[*] item")."""
    by_path: dict[str, list[Mapping[str, Any]]] = {}
    for condition in required:
        path = condition.get("field")
        if isinstance(path, str) and "[*]" not in path:
            by_path.setdefault(path, []).append(condition)
    for path, conditions in by_path.items():
        reason = _contradiction(path + of_item, conditions)
        if reason:
            return reason
    return None


def _collect_required(condition: Any, out: list[Mapping[str, Any]]) -> None:
    if not isinstance(condition, Mapping):
        return
    if "all" in condition:
        for child in condition["all"]:
            _collect_required(child, out)
    elif "any" not in condition and "not" not in condition:
        out.append(condition)  # a leaf, or a scope (its own item's leaves are apart)


def _contradiction(path: str, conditions: list[Mapping[str, Any]]) -> str | None:
    allowed: set[str] | None = None
    ops = {c.get("op") for c in conditions}
    if {"exists", "missing"} <= ops:
        return f"{path} must both exist and be missing"
    for condition in conditions:
        op, value = condition.get("op"), condition.get("value")
        if op in ("eq", "in"):
            values = {str(v) for v in (value if isinstance(value, list) else [value])}
            if not values:
                return f"{path} must be in an empty list"
            if allowed is not None and not allowed & values:
                return (f"{path} would have to be {_one_of(allowed)} and {_one_of(values)} "
                        "at once")
            allowed = values if allowed is None else allowed & values
        if op == "missing" and allowed is not None:
            return f"{path} must be missing and also have a value"
    if allowed is not None:
        excluded = set()
        for condition in conditions:
            if condition.get("op") in ("ne", "not_in"):
                value = condition.get("value")
                excluded |= {str(v) for v in (value if isinstance(value, list) else [value])}
        if allowed <= excluded:
            return f"{path} is required to be one of {sorted(allowed)} and none of them"
    return _empty_range(path, conditions)


def _one_of(values: set[str]) -> str:
    ordered = sorted(values)
    return repr(ordered[0]) if len(ordered) == 1 else f"one of {ordered}"


def _empty_range(path: str, conditions: list[Mapping[str, Any]]) -> str | None:
    low, high = float("-inf"), float("inf")
    low_open = high_open = False
    for condition in conditions:
        op = condition.get("op")
        if op not in _ORDER:
            continue
        try:
            bound = float(condition.get("value"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        if op in ("gt", "ge") and (bound > low or (bound == low and op == "gt")):
            low, low_open = bound, op == "gt"
        if op in ("lt", "le") and (bound < high or (bound == high and op == "lt")):
            high, high_open = bound, op == "lt"
    if low > high or (low == high and (low_open or high_open)):
        return f"no number is above {low:g} and below {high:g} for {path}"
    return None


# ---- connections, mappings, policies ---------------------------------------------------


def _lint_connection(doc: Document) -> list[Finding]:
    findings = [
        Finding(doc.path, "recovery_procedure", f"'switchboard {name}' is not a Switchboard "
                f"command; use one of: {', '.join(sorted(COMMANDS))}", "unknown-command")
        for name in _COMMAND.findall(str(doc.data.get("recovery_procedure") or ""))
        if name not in COMMANDS]
    scope = doc.data.get("data_scope") or []
    for index, path in enumerate(scope):
        reason = _unknown_field(path)
        if reason:
            findings.append(Finding(doc.path, f"data_scope[{index}]", reason, "unknown-field"))
    if doc.data.get("transport") == Transport.TASK_QUEUE:
        findings += _lint_task_access(doc)
    if doc.data.get("classification") == "de-identified":
        for entry, identifier in direct_identifiers_admitted([str(p) for p in scope]):
            index = scope.index(entry)
            findings.append(Finding(
                doc.path, f"data_scope[{index}]",
                f"a de-identified connection may not receive {identifier}, a direct identifier",
                "identifier-in-de-identified",
            ))
    return findings


def _lint_task_access(doc: Document) -> list[Finding]:
    if (doc.data.get("task_access") or {}).get("act"):
        return []
    return [Finding(doc.path, "task_access", f"task queue '{doc.data.get('id')}' names no "
                    "role that may act on its tasks: only admins can work them",
                    "task-access")]


def _lint_mapping(doc: Document) -> list[Finding]:
    findings = []
    for target, spec in (doc.data.get("fields") or {}).items():
        findings += _lint_target(doc.path, f"fields.{target}", str(target), spec)
    return findings


def _lint_target(file: str, location: str, target: str, spec: Any) -> list[Finding]:
    reason = _unknown_field(target)
    if reason:
        return [Finding(file, location, reason, "unknown-field")]
    findings = []
    if isinstance(spec, Mapping) and isinstance(spec.get("fields"), Mapping):
        for key, child in spec["fields"].items():
            findings += _lint_target(file, f"{location}.fields.{key}", f"{target}[*].{key}",
                                     child)
    return findings


def _lint_policies(doc: Document, connections: Mapping[str, Connection]) -> list[Finding]:
    findings = []
    rules = TaskRules.of(connections.values())
    for index, policy in enumerate(doc.data.get("policies", [])):
        for position, cid in enumerate(policy.get("connections", [])):
            if cid != "*" and cid not in connections:
                findings.append(Finding(doc.path, f"policies[{index}].connections[{position}]",
                                        f"connection '{cid}' is not in the catalog",
                                        "unknown-destination"))
        role = (policy.get("escalation") or {}).get("notify_role")
        if role is not None:
            findings += _lint_escalation(doc.path, f"policies[{index}].escalation.notify_role",
                                         Role(role), rules)
    return findings


def _lint_escalation(file: str, location: str, role: Role, rules: TaskRules) -> list[Finding]:
    """An escalation is a task in the escalations queue for the role the policy names:
    it must be a role that may act there, or nobody it is meant for sees it."""
    if rules.may({role}, ESCALATION_QUEUE, "task.complete"):
        return []
    where = (f"where {role} may not act" if ESCALATION_QUEUE in rules.queues
             else "which is not in the catalog: only admins can work them")
    return [Finding(file, location, f"escalations to {role} land in task queue "
                    f"'{ESCALATION_QUEUE}', {where}", "task-access")]
