from __future__ import annotations

from pathlib import Path

import pytest

from engine.model.concept_map import TableError, concept_map_from_csv, table_from_mapping

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
