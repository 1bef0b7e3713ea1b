"""Reading a configuration root (``rules/`` and ``catalog/``) from disk into a
RuleSource: the documents as parsed YAML, the lookup tables and the message files the
rule tests name. This is the only I/O in rule handling; compiling and linting work on
the RuleSource, so a version stored in the database can be checked the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import SwitchboardError
from engine.model.concept_map import (
    LookupTable,
    TableError,
    concept_map_from_csv,
    table_from_mapping,
    with_overrides,
)
from engine.rules.findings import Finding

# (folder under the root, document kind): every *.yaml there is one document.
LAYOUT = (
    ("rules/mappings", "mapping"),
    ("rules/mappings/tables", "table"),
    ("rules/routes", "routes"),
    ("rules/policies", "policies"),
    ("rules/tests", "tests"),
    ("catalog/connections", "connection"),
)
CONCEPT_MAPS = "rules/mappings/concept-maps"


class ConfigurationError(SwitchboardError):
    """The configuration root cannot be read at all."""


@dataclass(frozen=True)
class Document:
    """One YAML file: its path relative to the root, its kind and its content."""

    path: str
    kind: str
    data: Any


@dataclass(frozen=True)
class RuleSource:
    """A configuration as data: documents, the concept-map sheets (as text, so a
    version can be stored and rebuilt exactly), the lookup tables built from both, and
    the message files rule tests name."""

    documents: tuple[Document, ...]
    tables: dict[str, LookupTable]
    files: dict[str, bytes] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    concept_maps: dict[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Document]:
        return [doc for doc in self.documents if doc.kind == kind]


def read_rule_source(root: Path) -> RuleSource:
    """Read every rule, table, test message and connection under ``root``."""
    if not (root / "rules").is_dir() and not (root / "catalog").is_dir():
        raise ConfigurationError(
            f"{root} holds neither rules/ nor catalog/",
            hint="Give the configuration root (the folder holding rules/ and catalog/)",
        )
    findings: list[Finding] = []
    documents = []
    for folder, kind in LAYOUT:
        for path in sorted((root / folder).glob("*.yaml")):
            data = _load_yaml(root, path, findings)
            if data is not None:
                documents.append(Document(_relative(root, path), kind, data))
    concept_maps = _concept_map_texts(root, findings)
    files = _test_files(root, documents, findings)
    return build_rule_source(documents, concept_maps, files, findings)


def build_rule_source(
    documents: list[Document], concept_maps: dict[str, str], files: dict[str, bytes],
    findings: list[Finding] | None = None,
) -> RuleSource:
    """A RuleSource from its parts, building the lookup tables: how files read from
    disk and a version stored in the database become the same thing."""
    findings = list(findings or [])
    tables = _tables(documents, concept_maps, findings)
    return RuleSource(tuple(documents), tables, files, tuple(findings), dict(concept_maps))


def _load_yaml(root: Path, path: Path, findings: list[Finding]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        problem = getattr(exc, "problem", None) or str(exc)
        findings.append(Finding(_relative(root, path), where, f"not valid YAML: {problem}"))
    except (OSError, UnicodeDecodeError) as exc:
        findings.append(Finding(_relative(root, path), "(document)", f"cannot be read: {exc}"))
    return None


def _concept_map_texts(root: Path, findings: list[Finding]) -> dict[str, str]:
    texts = {}
    for path in sorted((root / CONCEPT_MAPS).glob("*.csv")):
        try:
            # Bytes, not read_text(): its newline translation would turn the sheets'
            # CRLF into LF, and an export would no longer give back the file.
            texts[_relative(root, path)] = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            findings.append(Finding(_relative(root, path), "(document)", f"cannot be read: {exc}"))
    return texts


def _tables(
    documents: list[Document], concept_maps: dict[str, str], findings: list[Finding]
) -> dict[str, LookupTable]:
    tables: dict[str, LookupTable] = {}
    for path, text in sorted(concept_maps.items()):
        try:
            table = concept_map_from_csv(Path(path).stem, text, path)
        except TableError as exc:
            findings.append(Finding(path, "(document)", str(exc)))
            continue
        tables[table.id] = table
    official = set(tables)
    overrides = []
    for doc in documents:
        if doc.kind != "table" or not isinstance(doc.data, dict):
            continue
        table_id = str(doc.data.get("id") or Path(doc.path).stem)
        try:
            table = table_from_mapping(table_id, doc.data, doc.path)
        except TableError as exc:
            findings.append(Finding(doc.path, "map", str(exc)))
            continue
        if "overrides" in doc.data:
            overrides.append((doc, table))
        else:
            tables[table_id] = table
    _override(tables, official, overrides, findings)
    return tables


def _override(tables: dict[str, LookupTable], official: set[str],
              overrides: list[tuple[Document, LookupTable]], findings: list[Finding]) -> None:
    """Apply each site's overrides to the official concept map it names: its codes win.
    An override is no table of its own, so a mapping's lookup names the map."""
    done: dict[str, str] = {}
    for doc, table in overrides:
        target = str(doc.data["overrides"])
        if target not in official:
            findings.append(Finding(doc.path, "overrides", f"there is no concept map "
                                    f"{target!r} to override: name one of "
                                    f"{', '.join(sorted(official)) or 'none'}"))
        elif target in done:
            findings.append(Finding(doc.path, "overrides", f"{done[target]} overrides "
                                    f"{target!r} already: keep its overrides in one table"))
        else:
            done[target] = doc.path
            tables[target] = with_overrides(tables[target], table)


def _test_files(
    root: Path, documents: list[Document], findings: list[Finding]
) -> dict[str, bytes]:
    """The message files rule tests name, keyed by their path relative to the root."""
    files: dict[str, bytes] = {}
    for doc in documents:
        if doc.kind != "tests" or not isinstance(doc.data, dict):
            continue
        for index, case in enumerate(doc.data.get("cases") or []):
            message = case.get("message") if isinstance(case, dict) else None
            if not isinstance(message, dict) or "file" not in message:
                continue
            key = message_file_key(doc.path, str(message["file"]))
            if os.path.isabs(key) or key.split(os.sep)[0] == os.pardir:
                # A version holds only what is under its root: never /etc/passwd.
                findings.append(Finding(doc.path, f"cases[{index}].message.file",
                                        f"message file {message['file']} is outside the "
                                        "configuration root", "tests"))
                continue
            try:
                files[key] = (root / key).read_bytes()
            except OSError:
                findings.append(Finding(doc.path, f"cases[{index}].message.file",
                                        f"no such message file: {message['file']}", "tests"))
    return files


def message_file_key(test_document: str, file: str) -> str:
    """The key under which ``read_rule_source`` stores a test's message file: its path
    relative to the root, normalised."""
    return os.path.normpath(os.path.join(os.path.dirname(test_document), file))


def _relative(root: Path, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
