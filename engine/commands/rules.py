"""``switchboard rules lint|test``, ``switchboard convert`` and ``switchboard route``:
the rule language from the command line. Exit codes: 0 ok, 1 findings or failures,
2 usage or configuration error."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from engine.errors import SwitchboardError
from engine.fhir.bundle import encode_bundle
from engine.hl7v2 import Message, parse
from engine.model.canonical import canonical_errors
from engine.rules.catalog_entry import CatalogError, Connection
from engine.rules.catalog_secrets import missing_secrets
from engine.rules.conditions import Evidence
from engine.rules.draft_templates import TEMPLATES, TemplateError, read_templates, template_findings
from engine.rules.findings import Finding
from engine.rules.lint import lint
from engine.rules.rule_set import Outcome, RuleSet, compile_rule_set
from engine.rules.rule_tests import run_rule_tests
from engine.rules.snapshot import to_content
from engine.rules.source import RuleSource, read_rule_source

OK, FINDINGS, USAGE = 0, 1, 2
_MESSAGE_START = re.compile(rb"(?:\r\n|\r|\n)+(?=MSH)")


def lint_command(root: Path, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    source = read_rule_source(root)
    findings = lint(source) + _template_findings(root, source)
    for finding in findings:
        print(f"{finding}  [{finding.category}]", file=out)
    # About this process, not the rules: warned of, and no finding.
    for warning in _secret_warnings(source):
        print(f"warning: {warning}", file=out)
    print(f"{len(findings)} finding(s) in {root}", file=out)
    return FINDINGS if findings else OK


def _template_findings(root: Path, source: RuleSource) -> list[Finding]:
    """The templates under ``root``, each filled in with its examples on ``source``."""
    try:
        templates = read_templates(root / TEMPLATES)
    except TemplateError as error:
        return [Finding(TEMPLATES, "(template)", str(error), "template")]
    content = to_content(source)
    return [finding for template in templates
            for finding in template_findings(template, content)]


def _secret_warnings(source: RuleSource) -> list[str]:
    """Each secret variable the catalog names that this process does not have."""
    files: dict[str, str] = {}
    connections: list[Connection] = []
    for doc in source.documents:
        if doc.kind != "connection":
            continue
        try:
            connection = Connection.from_dict(doc.data)
        except CatalogError:  # a finding already
            continue
        files[connection.id] = doc.path
        connections.append(connection)
    return [f"{files[missing.connection]}: {missing.location}: {missing}"
            for missing in missing_secrets(connections, os.environ)]


def test_command(root: Path, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    source = read_rule_source(root)
    rule_set = compile_rule_set(source)
    results = run_rule_tests(rule_set, source)
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'} {result.file}: {result.case}", file=out)
        for difference in result.differences:
            print(f"    {difference}", file=out)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed", file=out)
    return FINDINGS if failed or not results else OK


def convert_command(files: list[str], root: Path, out: TextIO | None = None,
                    err: TextIO | None = None, to: str = "canonical") -> int:
    """Each message's canonical record, or with ``to="fhir"`` its FHIR Bundle: one JSON
    object per line, except that a single message's Bundle is printed as one indented
    document (what a person reading one conversion wants)."""
    out = out or sys.stdout
    err = err or sys.stderr
    rule_set = compile_rule_set(read_rule_source(root))
    failures: list[str] = []
    parsed = list(_parsed(files, err, failures))
    for label, message in parsed:
        conversion = rule_set.convert(message)
        for issue in conversion.issues:
            print(f"{label}: {issue}", file=err)
        for where, problem in canonical_errors(conversion.record):
            print(f"{label}: invalid canonical record at {where}: {problem}", file=err)
            failures.append(label)
        if not conversion.covered:
            print(f"{label}: this message type is not covered by the mappings; the record "
                  "holds what could be mapped", file=err)
        if to == "fhir":
            # The Bundle's ids derive from the message id: the sender's control id
            # (MSH-10) keeps them the same on every run; the label stands in without one.
            bundle = encode_bundle(conversion.record, message.control_id or label)
            print(json.dumps(bundle, ensure_ascii=False,
                             indent=2 if len(parsed) == 1 else None), file=out)
        else:
            print(json.dumps(conversion.record, sort_keys=True, ensure_ascii=False), file=out)
    return FINDINGS if failures else OK


def route_command(files: list[str], root: Path, as_json: bool = False,
                  out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    rule_set = compile_rule_set(read_rule_source(root))
    failures: list[str] = []
    for label, message in _parsed(files, err, failures):
        outcome = rule_set.process(message, explain=True)
        if as_json:
            print(json.dumps(_outcome_json(outcome), sort_keys=True, ensure_ascii=False), file=out)
        else:
            _print_outcome(label, outcome, rule_set, out)
    return FINDINGS if failures else OK


def _parsed(files: list[str], err: TextIO, failures: list[str]) -> Iterator[tuple[str, Message]]:
    """Every readable message with its label ('FILE message N'); each unreadable one
    is reported on ``err`` and added to ``failures``."""
    for name, index, raw in _messages(files):
        label = f"{name} message {index}"
        try:
            message = parse(raw)
        except SwitchboardError as exc:
            print(f"{label}: {exc}", file=err)
            failures.append(label)
            continue
        yield label, message


def _messages(files: list[str]) -> Iterator[tuple[str, int, bytes]]:
    """Every message in every file ('-' is standard input); a file may hold several
    messages, each starting with MSH."""
    for name in files:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        parts = [part for part in _MESSAGE_START.split(data) if part.strip()]
        for index, part in enumerate(parts, start=1):
            yield ("<stdin>" if name == "-" else name), index, part


def _print_outcome(title: str, outcome: Outcome, rule_set: RuleSet, out: TextIO) -> None:
    record = outcome.conversion.record
    kind = f"{record['message'].get('type')}^{record['message'].get('event')}"
    print(f"== {title}: {kind} control id {record['message'].get('control_id')}", file=out)
    for problem in outcome.problems:
        print(f"  invalid canonical record: {problem}", file=out)
    if not outcome.decision.rows:
        print("  no route row fired", file=out)
    for row in outcome.decision.rows:
        targets = ", ".join(row.destinations) or "(no destination)"
        print(f"  row {row.table}/{row.id} fired -> {targets}", file=out)
        for evidence in row.evidence:
            print(f"      {_evidence_text(evidence)}", file=out)
    for delivery in outcome.deliveries:
        held = f" (held until '{delivery.held_by}' is approved)" if delivery.held_by else ""
        print(f"  deliver to {delivery.destination}{held}:", file=out)
        print(_indent(json.dumps(delivery.payload, indent=2, sort_keys=True)), file=out)
    for task in outcome.tasks:
        intent = task.intent
        print(f"  task {intent.kind} in queue {intent.queue} ({intent.mode}, row {intent.row}):",
              file=out)
        print(_indent(json.dumps(task.payload, indent=2, sort_keys=True)), file=out)


def _evidence_text(evidence: Evidence) -> str:
    verdict = "held" if evidence.held else "did not hold"
    expected = "" if evidence.expected is None else f" {evidence.expected!r}"
    where = evidence.place if evidence.source == "field" else f"HL7 {evidence.path}"
    return (f"{where} {evidence.quantifier} {evidence.op}{expected}: "
            f"saw {list(evidence.seen)!r}, {verdict}")


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "record": outcome.conversion.record,
        "issues": [str(i) for i in outcome.conversion.issues],
        "rows": [{"table": r.table, "id": r.id, "destinations": list(r.destinations)}
                 for r in outcome.decision.rows],
        "deliveries": [{"destination": d.destination, "held_by": d.held_by,
                        "payload": d.payload} for d in outcome.deliveries],
        "tasks": [{"queue": t.intent.queue, "kind": t.intent.kind, "mode": t.intent.mode,
                   "row": t.intent.row, "payload": t.payload} for t in outcome.tasks],
    }
