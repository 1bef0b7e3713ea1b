"""Codings from the v2-to-FHIR IG's concept maps, for targets whose code system varies
row by row (NK1-3 Relationship maps to v3 RoleCode, table 0063 or table 0131).

The maps are the CSV sheets the mappings use (rules/mappings/concept-maps/), read as
data: a row's FHIR code, display and system, never retyped here. Rows the sheet only
applies under a condition are left out, as the mappings leave them.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from engine.fhir.elements import Json, code, concept

CONCEPT_MAPS = Path(__file__).resolve().parents[2] / "rules" / "mappings" / "concept-maps"

# Columns of a v2-to-FHIR concept map sheet (two header rows, then one code a row).
_V2_CODE, _CONDITION, _FHIR_CODE, _DISPLAY, _SYSTEM = 0, slice(3, 6), 6, 8, 9


@cache
def _codings(table: str) -> dict[str, Json]:
    with (CONCEPT_MAPS / f"{table}.csv").open(newline="", encoding="utf-8") as sheet:
        rows = list(csv.reader(sheet))[2:]
    found: dict[str, Json] = {}
    for row in rows:
        row = row + [""] * (_SYSTEM + 1 - len(row))
        source, target, system = row[_V2_CODE].strip(), row[_FHIR_CODE].strip(), row[
            _SYSTEM].strip()
        if source and target and system and not any(c.strip() for c in row[_CONDITION]):
            found.setdefault(source, {"system": system, "code": target,
                                      **({"display": row[_DISPLAY].strip()}
                                         if row[_DISPLAY].strip() else {})})
    return found


def mapped_coding(table: str, value: Any) -> Json | None:
    """The FHIR coding the concept map ``table`` gives an HL7 code, or None."""
    found = code(value)
    coding = _codings(table).get(found) if found else None
    return dict(coding) if coding else None


def mapped_concept(table: str, coded: Any, v2_table: str) -> Json:
    """A CodeableConcept of a code as sent: the concept map's coding first, then the
    code as sent when it is another one. A code sent without its coding system (CWE-3)
    is one of the field's own HL7 table ``v2_table`` (``"0063"``)."""
    if not isinstance(coded, Mapping):
        return {}
    if code(coded.get("code")) and not coded.get("system"):
        coded = {**coded, "system": f"HL7{v2_table}"}
    sent = concept(coded)
    mapped = mapped_coding(table, coded.get("code"))
    if not mapped:
        return sent
    others = [coding for coding in sent.get("coding", ())
              if (coding.get("system"), coding.get("code")) != (mapped["system"],
                                                                 mapped["code"])]
    return {"coding": [mapped, *others]}
