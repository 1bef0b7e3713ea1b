"""Lookup tables for mappings: the official HL7 v2-to-FHIR concept maps (CSV, loaded as
data, never retyped), Switchboard's own small tables (YAML), and a site's overrides of
an official map (a table naming the map it ``overrides``: its codes win, the sheet
stays as published)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from engine.errors import SwitchboardError

# Columns of the v2-to-FHIR concept map sheets: v2 code, and the FHIR code six
# columns on; columns 3-5 hold a condition, and such rows only apply under it.
_V2_CODE, _CONDITION, _FHIR_CODE = 0, slice(3, 6), 6


class TableError(SwitchboardError):
    """A lookup table cannot be read."""


@dataclass(frozen=True)
class LookupTable:
    """Source code -> normalised value. ``conditional`` lists source codes the official
    map only maps under a condition Switchboard does not evaluate (left unmapped)."""

    id: str
    entries: Mapping[str, str]
    conditional: frozenset[str] = field(default_factory=frozenset)
    source: str = ""

    def get(self, code: str) -> str | None:
        return self.entries.get(code)


def concept_map_from_csv(table_id: str, text: str, source: str = "") -> LookupTable:
    """Read an official v2-to-FHIR concept map sheet (two header rows, then codes)."""
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2 or not rows[0] or rows[0][0].strip() != "HL7 v2":
        raise TableError(
            f"{source or table_id}: not a v2-to-FHIR concept map sheet "
            "(its first cell should be 'HL7 v2')"
        )
    entries: dict[str, str] = {}
    conditional: set[str] = set()
    for row in rows[2:]:
        row = row + [""] * (_FHIR_CODE + 1 - len(row))
        code, target = row[_V2_CODE].strip(), row[_FHIR_CODE].strip()
        if not code:
            continue
        if any(cell.strip() for cell in row[_CONDITION]):
            conditional.add(code)
            continue
        if target and code not in entries:
            entries[code] = target
    return LookupTable(table_id, entries, frozenset(conditional), source)


def table_from_mapping(
    table_id: str, document: Mapping[str, object], source: str = ""
) -> LookupTable:
    """A Switchboard table: ``{id, description, map: {code: value}}``."""
    entries = document.get("map")
    if not isinstance(entries, Mapping):
        raise TableError(f"{source or table_id}: a lookup table needs a 'map' of code: value")
    return LookupTable(
        table_id, {str(k): str(v) for k, v in entries.items()}, frozenset(), source
    )


def with_overrides(table: LookupTable, overrides: LookupTable) -> LookupTable:
    """``table`` with ``overrides``' codes winning over its own; an overridden code the
    official map only mapped under a condition is mapped now, as the site says."""
    return LookupTable(table.id, {**table.entries, **overrides.entries},
                       table.conditional - set(overrides.entries), table.source)


class SheetRow(NamedTuple):
    """One row of an official concept map sheet, as a person reads it."""

    code: str
    text: str
    condition: str
    target: str
    display: str


def concept_map_rows(text: str) -> list[SheetRow]:
    """Every code row of a v2-to-FHIR concept map sheet, in the sheet's order."""
    rows = []
    for row in list(csv.reader(io.StringIO(text)))[2:]:
        row = row + [""] * (_FHIR_CODE + 3 - len(row))
        if not row[_V2_CODE].strip():
            continue
        condition = " ".join(cell.strip() for cell in row[_CONDITION] if cell.strip())
        rows.append(SheetRow(row[_V2_CODE].strip(), row[1].strip(), condition,
                             row[_FHIR_CODE].strip(), row[_FHIR_CODE + 2].strip()))
    return rows
