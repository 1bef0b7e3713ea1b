"""A compiled rule set: the mapper, route table, catalog, data scopes and exception
policies of one configuration, built once from a RuleSource and immutable afterwards.

``RuleSet.process`` is the pure core of the engine: message in, canonical record, route
decision, and the minimised payload each destination and task would receive, out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import SwitchboardError
from engine.hl7v2 import Message
from engine.model.canonical import canonical_errors
from engine.model.mapping import Conversion, Mapper, MappingError
from engine.model.outcome_event import TASK_OUTCOME
from engine.model.schemas import schema_errors
from engine.rules.catalog_entry import CatalogError, Connection
from engine.rules.conditions import RuleError
from engine.rules.exception_policy import PolicyError, PolicySet
from engine.rules.findings import Finding
from engine.rules.minimise import Scope, compile_scope
from engine.rules.route_table import RouteDecision, RouteTable, TaskIntent, compile_routes
from engine.rules.source import RuleSource

# Document kind -> the schema in rules/schema/ that validates it.
SCHEMAS = {
    "mapping": "mapping",
    "table": "table",
    "routes": "routes",
    "policies": "policies",
    "tests": "ruletests",
    "connection": "connection",
}


class RuleSetError(SwitchboardError):
    """A configuration cannot be compiled; ``findings`` say where and why."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        first = "; ".join(str(f) for f in findings[:3])
        more = f" (and {len(findings) - 3} more)" if len(findings) > 3 else ""
        super().__init__(
            f"the configuration has {len(findings)} problem(s): {first}{more}",
            hint="Run 'switchboard rules lint' for the full list",
        )


@dataclass(frozen=True)
class Delivery:
    """What one destination would receive. ``held_by`` names the row whose hold
    checkpoint must be approved first."""

    destination: str
    payload: dict[str, Any]
    held_by: str | None = None


@dataclass(frozen=True)
class Task:
    intent: TaskIntent
    payload: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    conversion: Conversion
    decision: RouteDecision
    deliveries: tuple[Delivery, ...]
    tasks: tuple[Task, ...]
    problems: tuple[str, ...]

    @property
    def needs_a_route(self) -> bool:
        """Whether matching no route row is a problem: a message that goes nowhere is;
        a task's outcome event that no row sends on is not (most are kept only)."""
        message = self.conversion.record.get("message")
        return not (isinstance(message, dict) and message.get("source_format") == TASK_OUTCOME)


@dataclass(frozen=True)
class RuleSet:
    mapper: Mapper
    routes: RouteTable
    connections: Mapping[str, Connection]
    scopes: Mapping[str, Scope]
    policies: PolicySet

    def convert(self, message: Message) -> Conversion:
        return self.mapper.convert(message)

    def charset_of(self, source: str) -> str | None:
        """The character set a source's HL7 v2 bytes are in when MSH-18 names none."""
        connection = self.connections.get(source)
        return connection.charset if connection is not None else None

    def route(self, record: Mapping[str, Any], message: Message | None = None,
              *, explain: bool = False) -> RouteDecision:
        return self.routes.evaluate(record, message, explain=explain)

    def minimise(self, record: Mapping[str, Any], connection_id: str) -> dict[str, Any]:
        """``record`` projected onto the connection's data scope; nothing at all for a
        connection without a scope (minimum necessary is the default)."""
        scope = self.scopes.get(connection_id)
        return scope.project(record) if scope is not None else {}

    def process(self, message: Message, *, explain: bool = False) -> Outcome:
        return self.outcome(self.convert(message), message, explain=explain)

    def outcome(self, conversion: Conversion, message: Message | None = None, *,
                explain: bool = False) -> Outcome:
        """Route a converted record (from HL7 v2, or FHIR with no ``message``: route
        conditions on raw HL7 v2 paths then find nothing) and minimise it."""
        problems = tuple(f"{where}: {what}" for where, what in canonical_errors(conversion.record))
        decision = self.route(conversion.record, message, explain=explain)
        held = _held_destinations(decision)
        deliveries = tuple(
            Delivery(dest, self.minimise(conversion.record, dest), held.get(dest))
            for dest in decision.destinations
        )
        tasks = tuple(
            Task(intent, self.minimise(conversion.record, intent.queue))
            for intent in decision.tasks
        )
        return Outcome(conversion, decision, deliveries, tasks, problems)


def _held_destinations(decision: RouteDecision) -> dict[str, str]:
    held: dict[str, str] = {}
    for row in decision.rows:
        if row.checkpoint is not None and row.checkpoint.mode == "hold":
            for dest in row.destinations:
                held.setdefault(dest, row.id)
    return held


def schema_findings(source: RuleSource) -> list[Finding]:
    """Every document checked against its JSON Schema, plus what reading found."""
    findings = list(source.findings)
    for doc in source.documents:
        for location, problem in schema_errors(SCHEMAS[doc.kind], doc.data):
            findings.append(Finding(doc.path, location, problem, "schema"))
    return findings


def compile_rule_set(source: RuleSource) -> RuleSet:
    """Compile ``source``; RuleSetError lists what stops it."""
    findings = schema_findings(source)
    if findings:
        raise RuleSetError(findings)
    try:
        return _compile(source)
    except MappingError:
        raise RuleSetError(_mapping_findings(source)) from None
    except (RuleError, PolicyError, CatalogError) as exc:
        raise RuleSetError([Finding("(rule set)", "(compile)", str(exc), "compile")]) from None


def _mapping_findings(source: RuleSource) -> list[Finding]:
    """Which mapping files fail to compile, located: errors read 'ID: KEY: PROBLEM'."""
    findings = []
    for doc in source.of_kind("mapping"):
        try:
            Mapper([doc.data], source.tables)
        except MappingError as exc:
            _, _, rest = exc.reason.partition(": ")
            location, _, problem = rest.partition(": ")
            findings.append(Finding(doc.path, location, problem, "compile"))
    return findings


def _compile(source: RuleSource) -> RuleSet:
    mapper = build_mapper(source)
    routes = compile_routes([doc.data for doc in source.of_kind("routes")])
    connections = {}
    for doc in source.of_kind("connection"):
        connection = Connection.from_dict(doc.data)
        connections[connection.id] = connection
    scopes = {
        cid: compile_scope(list(c.data_scope)) for cid, c in connections.items() if c.data_scope
    }
    policies = PolicySet.from_documents([doc.data for doc in source.of_kind("policies")])
    return RuleSet(mapper, routes, connections, scopes, policies)


def build_mapper(source: RuleSource) -> Mapper:
    """The mapper for every mapping document, with the coverage they declare."""
    documents = [doc.data for doc in source.of_kind("mapping") if isinstance(doc.data, dict)]
    covers = [str(c) for doc in documents for c in doc.get("covers", [])]
    return Mapper(documents, source.tables, covers)
