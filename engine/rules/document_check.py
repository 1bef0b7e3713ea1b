"""One document of a version checked as the gates would check it, in its version:
schema and lint findings about it alone, with the rest of the version as it is (a
route's destinations are looked up in the version's own catalog)."""

from __future__ import annotations

from typing import Any

from engine.rules.findings import Finding
from engine.rules.lint import lint
from engine.rules.snapshot import from_content


def with_document(content: dict[str, Any], path: str, kind: str, data: Any) -> dict[str, Any]:
    """``content`` with the document at ``path`` replaced by (or added as) ``data``."""
    documents = [d for d in content["documents"] if d["path"] != path]
    documents.append({"path": path, "kind": kind, "data": data})
    return {**content, "documents": sorted(documents, key=lambda d: str(d["path"]))}


def document_findings(content: dict[str, Any], path: str, kind: str,
                      data: Any) -> list[Finding]:
    """What the schema and the linter find in ``data`` as ``path`` of ``content``."""
    source = from_content(with_document(content, path, kind, data))
    return [finding for finding in lint(source) if finding.file == path]


def blocking(findings: list[Finding]) -> list[Finding]:
    """The findings that stop a save: a document that breaks its schema is not kept."""
    return [finding for finding in findings if finding.category == "schema"]
