from __future__ import annotations

from pathlib import Path

import pytest

from engine.model.concept_map import (
    SheetRow,
    TableError,
    concept_map_from_csv,
    concept_map_rows,
    table_from_mapping,
    with_overrides,
)

MAPS = Path(__file__).resolve().parents[3] / "rules" / "mappings" / "concept-maps"


@pytest.mark.parametrize(
    "table, code, expected",
    [
        ("administrative-sex", "M", "male"),
        ("administrative-sex", "A", "other"),
        ("administrative-sex", "X", None),
        ("patient-class", "I", "IMP"),
        ("patient-class", "O", "AMB"),
        ("observation-status", "F", "final"),
        ("observation-status", "S", None),  # the official map leaves S unmapped
        ("order-status", "CM", "completed"),
        ("appointment-status", "Booked", "booked"),
        ("event-encounter-status", "A03", "finished"),
    ],
)
def test_official_concept_maps_load_as_tables(table, code, expected):
    path = MAPS / f"{table}.csv"
    assert concept_map_from_csv(table, path.read_text()).get(code) == expected


def test_conditional_rows_are_not_mapped():
    table = concept_map_from_csv("report-status", (MAPS / "report-status.csv").read_text())
    assert table.get("Y") is None and "Y" in table.conditional


def test_a_file_that_is_not_a_concept_map():
    with pytest.raises(TableError, match="not a v2-to-FHIR concept map sheet"):
        concept_map_from_csv("x", "a,b\n1,2\n", "tables/x.csv")


def test_switchboard_table():
    assert table_from_mapping("yn", {"map": {"Y": "yes"}}).get("Y") == "yes"
    with pytest.raises(TableError, match="needs a 'map'"):
        table_from_mapping("yn", {"entries": {}})


def test_an_override_wins_over_the_official_code_and_may_map_a_conditional_one():
    official = concept_map_from_csv("report-status", (MAPS / "report-status.csv").read_text())
    site = table_from_mapping("report-status-overrides", {"map": {"Y": "final", "F": "amended"}})
    overridden = with_overrides(official, site)
    assert (overridden.get("Y"), overridden.get("F")) == ("final", "amended")
    assert "Y" not in overridden.conditional and overridden.id == "report-status"
    assert overridden.get("P") == official.get("P") and official.get("F") == "final"


def test_the_sheet_reads_row_by_row_with_its_conditions():
    rows = concept_map_rows((MAPS / "administrative-sex.csv").read_text())
    assert rows[0] == SheetRow("F", "Female", "", "female", "Female")
    assert [row.code for row in rows] == ["F", "M", "O", "U", "A", "N"]
    conditional = [row for row in concept_map_rows((MAPS / "report-status.csv").read_text())
                   if row.condition]
    assert conditional and all(row.code for row in conditional)
