"""What the rule studio's pages show, read from a version's content: its documents by
kind, its catalog connections in words, findings beside the fields or lines they
concern, and the YAML view's state (what was read, what stops a save)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from flask import url_for
from markupsafe import Markup

from engine.rules import lifecycle
from engine.rules.catalog_entry import CatalogError, Connection
from engine.rules.catalog_secrets import MissingSecret, missing_secrets
from engine.rules.document_check import blocking, document_findings
from engine.rules.findings import Finding
from engine.rules.scope_wording import scope_line
from engine.rules.yaml_lines import line_of, node_lines, yaml_problem

# The kinds of document a version holds, in the order the draft page lists them.
KIND_NAMES = {"routes": "Routes", "mapping": "Mappings", "table": "Lookup tables",
              "policies": "Policies", "connection": "Catalog connections",
              "tests": "Rule tests"}


@dataclass(frozen=True)
class Destination:
    id: str
    name: str
    classification: str
    scope: str
    task_queue: bool


def draft_rows(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in versions if v["status"] == lifecycle.DRAFT]


def sent_back_rows(versions: list[dict[str, Any]], author: str) -> list[dict[str, Any]]:
    """``author``'s rejected versions that no later version was started from: the ones
    still to fix."""
    fixed = {v["parent"] for v in versions if v["parent"] is not None}
    return [v for v in versions if v["status"] == lifecycle.REJECTED
            and v["author"] == author and v["version"] not in fixed]


def grouped_documents(content: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(kind, its documents by path) for every kind, in KIND_NAMES' order."""
    return [(kind, sorted((d for d in content["documents"] if d["kind"] == kind),
                          key=lambda d: str(d["path"])))
            for kind in KIND_NAMES]


def concept_maps_of(content: dict[str, Any]) -> list[tuple[str, int]]:
    """Each official concept map of the version, with how many codes the draft overrides."""
    overridden: dict[str, int] = {}
    for doc in content["documents"]:
        data = doc["data"]
        if doc["kind"] == "table" and isinstance(data, dict) and "overrides" in data:
            overridden[str(data["overrides"])] = len(data.get("map") or {})
    names = sorted(path.rsplit("/", 1)[-1].removesuffix(".csv")
                   for path in content.get("concept_maps") or {})
    return [(name, overridden.get(name, 0)) for name in names]


def connections_of(content: dict[str, Any]) -> list[Destination]:
    """The version's catalog connections, as a destination picker shows them."""
    found = []
    for doc in content["documents"]:
        if doc["kind"] != "connection":
            continue
        data = doc["data"]
        found.append(Destination(
            str(data.get("id", "")), str(data.get("name", "")),
            str(data.get("classification", "unclassified")),
            scope_line(data.get("data_scope") or []) or "no data scope written",
            data.get("transport") == "task-queue"))
    return sorted(found, key=lambda d: d.id)


def findings_by_key(findings: list[Finding],
                    place: Callable[[str], str]) -> dict[str, Any]:
    """Each finding's problem under the form key of its location."""
    placed: dict[str, list[str]] = {}
    for finding in findings:
        placed.setdefault(place(finding.location), []).append(finding.problem)
    return {key: "; ".join(problems) for key, problems in placed.items()}


@dataclass
class YamlState:
    """The YAML view's text read: the data, each problem on its line, and whether the
    problems stop a save (unreadable YAML or a schema error)."""

    data: Any = None
    lines: dict[int, list[str]] = field(default_factory=dict)
    refused: bool = False
    findings: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, line: int, where: str, problem: str) -> None:
        self.lines.setdefault(line, []).append(problem)
        self.findings.append((line, where, problem))


def yaml_page_state(content: dict[str, Any], document: dict[str, Any], text: str,
                    saving: bool) -> YamlState:
    state = YamlState()
    problem = yaml_problem(text)
    if problem is not None:
        state.add(problem.line, "", f"not readable YAML: {problem.problem}")
        state.refused = True
        return state
    state.data = yaml.safe_load(text)
    if not isinstance(state.data, dict):
        state.add(1, "(document)", "the document must be a mapping of keys to values")
        state.refused = True
        return state
    findings = document_findings(content, document["path"], document["kind"], state.data)
    lines = node_lines(text)
    for finding in findings:
        state.add(line_of(finding.location, lines), finding.location, finding.problem)
    state.refused = saving and bool(blocking(findings))
    state.findings.sort()
    return state


_MISSING_OWNER = re.compile(
    r"^(?P<file>[^:]+): (?P<where>[^:]+): connection '(?P<id>[^']+)' has no (?P<what>.+)$")
_LOCATED = re.compile(r"^(?P<file>(?:rules|catalog)/[^:]+\.yaml): (?P<rest>.+)$")


def finding_markup(version: int, finding: str, connections: set[str]) -> Markup:
    """A gate's finding with a way to fix it: what a catalog entry lacks links to its
    form, and any other finding's file to the file in the YAML view."""
    lacking = _MISSING_OWNER.match(finding)
    if lacking and lacking["id"] in connections:
        form = url_for("studio.document", version=version,
                       path=f"catalog/connections/{lacking['id']}.yaml")
        return Markup('Catalog entry <a href="{}">{}</a> has no {}: fill it in on its form '
                      '<span class="text-muted">({}: {})</span>').format(
            form, lacking["id"], lacking["what"], lacking["file"], lacking["where"])
    located = _LOCATED.match(finding)
    if located:
        view = url_for("studio.yaml", version=version, path=located["file"])
        return Markup('<a href="{}"><code>{}</code></a>: {}').format(
            view, located["file"], located["rest"])
    return Markup("{}").format(finding)


def unset_secrets(content: dict[str, Any], published: dict[str, Any]) -> list[MissingSecret]:
    """The secret variables that the catalog entries this version adds or changes name,
    and this server lacks: not a gate (the engine may run with other variables than the
    web process), but what would make their deliveries fail once it is published. What
    the published version already lacks is the dashboard's to show."""
    running = {doc["path"]: doc["data"] for doc in published["documents"]}
    connections = []
    for doc in content["documents"]:
        if doc["kind"] != "connection" or running.get(doc["path"]) == doc["data"]:
            continue
        try:
            connections.append(Connection.from_dict(doc["data"]))
        except CatalogError:  # a finding of the gates already
            continue
    return missing_secrets(connections, os.environ)
