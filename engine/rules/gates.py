"""The gates a rule-set version must pass before it can be approved, as pure checks of
its source: schema, lint, rule tests and a complete catalog entry for every
destination. The fifth gate, an impact preview of exactly this content, is the
store's to answer (engine.change_control) and is passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.rules.lint import lint
from engine.rules.rule_set import RuleSetError, compile_rule_set, schema_findings
from engine.rules.rule_tests import run_rule_tests
from engine.rules.source import RuleSource

SCHEMA, LINT, TESTS, CATALOG, PREVIEW = "schema", "lint", "tests", "catalog", "preview"
GATES = (SCHEMA, LINT, TESTS, CATALOG, PREVIEW)
# Lint findings the catalog gate reports, so the lint gate does not report them twice.
_CATALOG_CATEGORIES = frozenset({"unknown-destination", "incomplete-destination"})


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    findings: tuple[str, ...] = field(default=())
    # Not passed, though nothing is wrong with the rules: a step still to take (the
    # impact preview not run yet on this content, or to run again).
    waiting: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"gate": self.name, "passed": self.passed, "waiting": self.waiting,
                "findings": list(self.findings)}


def source_gates(source: RuleSource) -> list[Gate]:
    """The schema, lint, tests and catalog gates of ``source``, in that order."""
    schema = [str(f) for f in schema_findings(source)]
    if schema:
        # Nothing else can be read reliably from a source that breaks its schemas.
        skipped = ("not checked: the schema gate failed",)
        return [Gate(SCHEMA, False, tuple(schema)), Gate(LINT, False, skipped),
                Gate(TESTS, False, skipped), Gate(CATALOG, False, skipped)]
    findings = lint(source)
    linted = tuple(str(f) for f in findings if f.category not in _CATALOG_CATEGORIES)
    catalog = tuple(str(f) for f in findings if f.category in _CATALOG_CATEGORIES)
    return [Gate(SCHEMA, True), Gate(LINT, not linted, linted), _tests_gate(source),
            Gate(CATALOG, not catalog, catalog)]


def _tests_gate(source: RuleSource) -> Gate:
    try:
        rule_set = compile_rule_set(source)
    except RuleSetError as error:
        return Gate(TESTS, False, tuple(f"does not compile: {f}" for f in error.findings))
    results = run_rule_tests(rule_set, source)
    if not results:
        return Gate(TESTS, False, ("the version has no rule tests: add at least one case",))
    failed = tuple(f"{r.file}: {r.case}: {difference}"
                   for r in results if not r.passed for difference in r.differences)
    return Gate(TESTS, not failed, failed)


def failed(gates: list[Gate]) -> list[Gate]:
    return [gate for gate in gates if not gate.passed]
