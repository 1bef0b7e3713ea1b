"""Where a canonical field comes from in HL7 v2, read from the mapping documents as
written: ``results[*].abnormal_flags[*]`` is read from ``OBX-8.1``. For saying a route
condition in the words of the message people know; the mapper itself never asks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def field_sources(documents: Iterable[Any]) -> dict[str, str]:
    """Canonical path (``[*]`` for each item of a list) -> the HL7 v2 path its value is
    read from; the first mapping to name a field wins, and fields built from cases,
    parents or children are left out."""
    found: dict[str, str] = {}
    for document in documents:
        if isinstance(document, Mapping) and isinstance(document.get("fields"), Mapping):
            _fields(document["fields"], "", "", found)
    return found


def _fields(fields: Mapping[str, Any], prefix: str, base: str, found: dict[str, str]) -> None:
    for key, spec in fields.items():
        _spec(spec, f"{prefix}{key}", base, found)


def _spec(spec: Any, target: str, base: str, found: dict[str, str]) -> None:
    if isinstance(spec, Mapping) and "each" in spec:
        each = spec["each"]
        first = each[0] if isinstance(each, list) and each else each
        stem = _joined(base, first[:-3]) if isinstance(first, str) and first.endswith(
            "[*]") else None
        if stem is None:
            return
        if isinstance(spec.get("fields"), Mapping):
            _fields(spec["fields"], f"{target}[*].", stem, found)
        elif "value" in spec:
            _spec(spec["value"], f"{target}[*]", stem, found)
        return
    path = spec.get("from") if isinstance(spec, Mapping) else spec
    joined = _joined(base, path) if isinstance(path, str) else None
    if joined:
        found.setdefault(target, joined)


def _joined(base: str, path: str) -> str | None:
    """``path`` made absolute against the item it is read in; None for a parent's or
    child's path, or a relative one outside any item."""
    if not path or path[0] in "^>":
        return None
    if path[0] in ".-":
        return base + path if base else None
    return path
