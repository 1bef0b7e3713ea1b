"""Validation of canonical records against ``rules/schema/canonical.schema.json``."""

from __future__ import annotations

from typing import Any

import fastjsonschema

from engine.model.canonical_path import EVERY
from engine.model.schemas import fast_check, schema, schema_errors


def canonical_errors(record: Any) -> list[tuple[str, str]]:
    """(location, problem) for every schema violation; empty when the record is valid.
    Every message passes through here, so the compiled check answers first and
    jsonschema words the errors only for a record that fails it."""
    try:
        fast_check("canonical")(record)
        return []
    except fastjsonschema.JsonSchemaException:
        return schema_errors("canonical", record)


def canonical_paths() -> frozenset[tuple[str, ...]]:
    """Every path the canonical model defines, as steps (``EVERY`` after list keys),
    including intermediate objects: the vocabulary routes and scopes may use."""
    root = schema("canonical")
    found: set[tuple[str, ...]] = set()
    _collect(root, root, (), found)
    return frozenset(found)


def _collect(root: dict[str, Any], node: dict[str, Any], prefix: tuple[str, ...],
             found: set[tuple[str, ...]]) -> None:
    node = _resolve(root, node)
    if node.get("type") == "array" or "items" in node:
        prefix = (*prefix, EVERY)
        found.add(prefix)
        node = _resolve(root, node.get("items", {}))
    for key, child in node.get("properties", {}).items():
        path = (*prefix, key)
        found.add(path)
        _collect(root, child, path, found)


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: dict[str, Any] = root["$defs"][ref.split("/")[-1]]
        return resolved
    return node
