"""Findings: what the schema checks, the linter and the loader report about a rule set."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Finding:
    """One problem, located as ``file: location: problem`` with 0-based list indexes,
    e.g. ``rules/routes/labs.yaml: rows[3].to[0]: connection 'lab-out' has no recovery
    procedure``."""

    file: str
    location: str
    problem: str
    category: str = "schema"

    def __str__(self) -> str:
        return f"{self.file}: {self.location}: {self.problem}"
