"""A connection's data scope in words, for compliance: its canonical paths grouped by
the part of the record they come from ("Patient: identifiers, names, birth date"),
each marked when it lets a direct identifier of the patient through. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.model.canonical_path import EVERY, parse_canonical_path
from engine.rules.catalog_entry import direct_identifiers_admitted

# The record's parts, in the record's order, as rules/schema/canonical.schema.json
# describes them.
AREAS = {
    "message": "Message envelope",
    "patient": "Patient",
    "encounter": "Visit",
    "orders": "Orders",
    "results": "Results",
    "reports": "Result reports",
    "specimens": "Specimens",
    "order_specimens": "Specimens described on orders",
    "appointments": "Appointments",
    "referrals": "Referrals",
    "documents": "Documents",
    "merge": "Merge (former identity)",
    "roles": "Care roles",
    "tasks": "Tasks",
    "task_outcome": "Task outcome",
    "immunizations": "Immunizations",
    "medication_orders": "Medication orders",
    "pharmacy_orders": "Pharmacy orders",
    "medication_dispenses": "Medication dispenses",
    "allergies": "Allergies",
    "diagnoses": "Diagnoses",
    "problems": "Problems",
    "procedures": "Procedures",
    "related_persons": "Related persons (next of kin)",
    "guarantors": "Guarantors",
    "coverages": "Insurance coverages",
}
WHOLE_AREA = "all fields"


@dataclass(frozen=True)
class ScopeField:
    words: str  # "birth date", "names › given", or WHOLE_AREA
    path: str  # as the catalog writes it
    identifies: bool  # it lets a direct identifier of the patient through


@dataclass(frozen=True)
class ScopeArea:
    area: str
    fields: tuple[ScopeField, ...]

    @property
    def words(self) -> str:
        return f"{self.area}: {', '.join(field.words for field in self.fields)}"


def scope_in_words(scope: Sequence[str]) -> list[ScopeArea]:
    """``scope`` grouped by area, areas in the record's order, fields as written."""
    grouped: dict[str, list[ScopeField]] = {}
    for path in scope:
        keys = [step for step in parse_canonical_path(path) if step != EVERY]
        words = " › ".join(key.replace("_", " ") for key in keys[1:]) or WHOLE_AREA
        field = ScopeField(words, path, bool(direct_identifiers_admitted([path])))
        grouped.setdefault(keys[0], []).append(field)
    order = list(AREAS)
    ranked = sorted(grouped, key=lambda key: (order.index(key) if key in order else len(order),
                                              key))
    return [ScopeArea(_area_name(key), tuple(grouped[key])) for key in ranked]


def scope_line(scope: Sequence[str]) -> str:
    """The scope in one line: "Patient: identifiers, names; Results: all fields"."""
    return "; ".join(area.words for area in scope_in_words(scope))


def _area_name(key: str) -> str:
    return AREAS.get(key) or key.replace("_", " ").capitalize()
