"""A site's overrides of an official concept map: a table document naming the map it
``overrides``, whose codes win while the sheet stays as published."""

from __future__ import annotations

from pathlib import Path

from engine.hl7v2 import parse
from engine.rules.lint import lint
from engine.rules.rule_set import build_mapper
from engine.rules.source import Document, build_rule_source, read_rule_source

ROOT = Path(__file__).resolve().parents[3]
OVERRIDE = Document("rules/mappings/tables/administrative-sex-overrides.yaml", "table", {
    "id": "administrative-sex-overrides", "overrides": "administrative-sex",
    "description": "Our registration desk sends A for unknown", "map": {"A": "unknown"}})
ADT = ("MSH|^~\\&|PAS|WARD|SB|HOSP|20240101120000||ADT^A01|1|P|2.5.1\r"
       "PID|1||123^^^HOSP^MR||Doe^Jane||19800101|{sex}\r")


def _shipped_with(*documents: Document):
    shipped = read_rule_source(ROOT)
    return build_rule_source([*shipped.documents, *documents], shipped.concept_maps,
                             shipped.files)


def test_an_override_wins_and_the_mapping_still_names_the_official_map():
    source = _shipped_with(OVERRIDE)
    assert lint(source) == []
    table = source.tables["administrative-sex"]
    assert (table.get("A"), table.get("M")) == ("unknown", "male")
    assert "administrative-sex-overrides" not in source.tables
    mapper = build_mapper(source)
    for sex, gender in (("A", "unknown"), ("F", "female")):
        record = mapper.convert(parse(ADT.format(sex=sex))).record
        assert record["patient"]["gender"] == gender


def test_an_override_of_no_concept_map_or_a_second_one_is_a_finding():
    stray = Document("rules/mappings/tables/stray.yaml", "table",
                     {"id": "stray", "overrides": "sex", "map": {"A": "unknown"}})
    second = Document("rules/mappings/tables/more-sex.yaml", "table", {
        "id": "more-sex", "overrides": "administrative-sex", "map": {"U": "other"}})
    found = [str(f) for f in lint(_shipped_with(OVERRIDE, stray, second))]
    assert found == [
        "rules/mappings/tables/more-sex.yaml: overrides: rules/mappings/tables/"
        "administrative-sex-overrides.yaml overrides 'administrative-sex' already: "
        "keep its overrides in one table",
        "rules/mappings/tables/stray.yaml: overrides: there is no concept map 'sex' to "
        "override: name one of administrative-sex, allergen-type, allergy-criticality, "
        "allergy-type, appointment-status, completion-status, contact-role, "
        "diagnosis-type, event-encounter-status, interpretation, name-type, "
        "observation-status, order-control-status, order-status, patient-class, "
        "relationship, report-status, specimen-type",
    ]
