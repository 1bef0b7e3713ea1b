"""What a result's interpretation flags (HL7 v2 table 0078, the canonical record's
``abnormal_flags``) say: whether a result is abnormal, and whether it is critical (past
a panic limit or the instrument's range). The one reading the work queue's listing and
the console's task page share."""

from __future__ import annotations

from typing import Any

NORMAL_FLAGS = frozenset({"N", "NEG", "ND", "NR", "S"})
CRITICAL_FLAGS = frozenset({"LL", "HH", "AA", "LU", "HU", "<", ">"})


def flags_of(result: Any) -> list[str]:
    flags = result.get("abnormal_flags") if isinstance(result, dict) else None
    return [str(flag) for flag in flags or ()]


def is_abnormal(result: Any) -> bool:
    """Whether a result carries a flag that is not one of the normal ones."""
    return any(flag not in NORMAL_FLAGS for flag in flags_of(result))


def is_critical(result: Any) -> bool:
    """Whether a result carries a critical flag."""
    return any(flag in CRITICAL_FLAGS for flag in flags_of(result))


def flagged(results: Any) -> list[dict[str, Any]]:
    """The abnormal results of a record, critical first: each test's name and flags,
    so a list can say what a review is about without opening it."""
    if not isinstance(results, list):
        return []
    found = [{"test": str(r.get("display") or r.get("code") or "a result"),
              "flags": [f for f in flags_of(r) if f not in NORMAL_FLAGS],
              "critical": is_critical(r)} for r in results if is_abnormal(r)]
    return sorted(found, key=lambda item: not item["critical"])
