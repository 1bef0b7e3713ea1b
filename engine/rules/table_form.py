"""A lookup table as a grid a person fills in, and back: its id, description, the
official concept map it overrides (if any) and its rows of source code -> value. Pure:
the console posts the grid as flat fields (``table-id``, ``rows-2-code``,
``rows-2-value``, ``rows-2-type``), this module reads them, applies the button
pressed and writes the document with where each location is in the grid."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TABLES_FOLDER = "rules/mappings/tables/"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
Fields = Mapping[str, Sequence[str]]


@dataclass
class TableRow:
    code: str = ""
    value: str = ""
    type: str = "string"  # what the value was written as: string, number or boolean


@dataclass
class TableForm:
    id: str = ""
    description: str = ""
    overrides: str = ""
    rows: list[TableRow] = field(default_factory=list)


def overrides_path(concept_map: str) -> str:
    """Where a concept map's overrides are kept when the draft has none yet."""
    return f"{TABLES_FOLDER}{concept_map}-overrides.yaml"


def from_document(data: Mapping[str, Any]) -> TableForm:
    rows = [TableRow(str(code), _value_text(value), _type_of(value))
            for code, value in (data.get("map") or {}).items()]
    return TableForm(str(data.get("id", "")), str(data.get("description", "")),
                     str(data.get("overrides", "")), rows)


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else "string"


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_form(fields: Fields) -> TableForm:
    rows: list[TableRow] = []
    while f"rows-{len(rows)}-code" in fields:
        key = f"rows-{len(rows)}"
        rows.append(TableRow(_one(fields, f"{key}-code"), _one(fields, f"{key}-value"),
                             _one(fields, f"{key}-type") or "string"))
    description = str((fields.get("table-description") or [""])[0]).replace("\r\n", "\n")
    return TableForm(_one(fields, "table-id"), description, _one(fields, "table-overrides"),
                     rows)


def _one(fields: Fields, name: str) -> str:
    return str((fields.get(name) or [""])[0]).strip()


def apply(form: TableForm, action: str) -> TableForm:
    """``form`` after ``add-row`` or ``delete:rows-2``; unknown buttons do nothing."""
    verb, _, key = action.partition(":")
    found = re.fullmatch(r"rows-(\d+)", key)
    if verb == "add-row":
        form.rows.append(TableRow())
    elif verb == "delete" and found and int(found.group(1)) < len(form.rows):
        del form.rows[int(found.group(1))]
    return form


@dataclass
class Written:
    """The table a grid says, the problems found as typed, and each row's code."""

    data: dict[str, Any]
    errors: dict[str, str]
    codes: list[str] = field(default_factory=list)

    def place(self, location: str) -> str:
        """The grid key of a finding's ``location`` (``map.F``, ``overrides``)."""
        if location in ("id", "description", "overrides"):
            return f"table-{location}"
        code = location.removeprefix("map.") if location.startswith("map.") else None
        if code is not None and code in self.codes:
            return f"rows-{self.codes.index(code)}-value"
        return "table"


def to_document(form: TableForm, complete: bool = True) -> Written:
    """The table ``form`` says; a field left empty is a problem only when ``complete``."""
    written = Written({"id": form.id}, {})
    if form.description:
        written.data["description"] = form.description
    if form.overrides:
        written.data["overrides"] = form.overrides
    if complete and not _ID.match(form.id):
        written.errors["table-id"] = "Use lower-case letters, digits and hyphens, e.g. ward-codes"
    entries: dict[str, Any] = {}
    for index, row in enumerate(form.rows):
        _check_row(row, f"rows-{index}", entries, written.errors, complete)
        entries.setdefault(row.code, _typed(row))
        written.codes.append(row.code)
    written.data["map"] = entries
    return written


def _check_row(row: TableRow, key: str, entries: dict[str, Any], errors: dict[str, str],
               complete: bool) -> None:
    if not row.code and (complete or row.value):
        errors[f"{key}-code"] = "Type the source code, as the message sends it"
    elif row.code in entries:
        errors[f"{key}-code"] = (f"The code '{row.code}' has a row already: change that row, "
                                 "or delete this one")
    if not row.value and (complete or row.code):
        errors[f"{key}-value"] = "Type the value the code becomes"


def _typed(row: TableRow) -> Any:
    """The value as the document had it: a number or a yes/no stays one while its
    text still reads as one; anything else typed is text."""
    if row.type == "boolean" and row.value in ("true", "false"):
        return row.value == "true"
    if row.type == "number" and _NUMBER.match(row.value):
        return float(row.value) if "." in row.value else int(row.value)
    return row.value
