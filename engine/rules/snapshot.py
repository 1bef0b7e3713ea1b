"""A configuration as one JSON document: what a rule-set version stores in the
database, rebuilt into exactly the RuleSource it was taken from."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from engine.rules.source import Document, RuleSource, build_rule_source


def to_content(source: RuleSource) -> dict[str, Any]:
    """JSON-able content of ``source``, in a stable order."""
    return {
        "documents": [
            {"path": doc.path, "kind": doc.kind, "data": doc.data}
            for doc in sorted(source.documents, key=lambda d: d.path)
        ],
        "concept_maps": dict(sorted(source.concept_maps.items())),
        "files": {
            path: base64.b64encode(data).decode("ascii")
            for path, data in sorted(source.files.items())
        },
    }


def from_content(content: dict[str, Any]) -> RuleSource:
    documents = [Document(d["path"], d["kind"], d["data"]) for d in content["documents"]]
    files = {path: base64.b64decode(text) for path, text in content.get("files", {}).items()}
    return build_rule_source(documents, dict(content.get("concept_maps", {})), files)


def content_hash(content: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON: two versions with the same rules hash the same."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
