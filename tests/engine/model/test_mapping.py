"""The mapping engine, feature by feature, on small inline messages."""

from __future__ import annotations

import pytest

from engine.hl7v2 import parse
from engine.model.concept_map import LookupTable
from engine.model.mapping import Mapper, MappingError

MESSAGE = parse(
    "MSH|^~\\&|LAB|H|EHR|H|20240102030405+0100||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||111^^^MRN^MR~222^^^SSA^SS||DOE^JANE||19800102|F\r"
    "ORC|RE|P1|F1||CM\r"
    "OBR|1|P1|F1|GLU^Glucose^L\r"
    "OBX|1|NM|GLU^Glucose^L||7.5|mmol/L|3.9-5.6|H~A|||F\r"
    "OBX|2|ST|NOTE^Note^L||see comment||||||F\r"
    "OBR|2|P2|F2|K^Potassium^L\r"
    "OBX|1|NM|K^Potassium^L||abc|mmol/L||N|||X\r"
)
TABLES = {"sex": LookupTable("sex", {"F": "female", "M": "male"})}


def convert(fields, **doc):
    mapper = Mapper([{"id": "t", "fields": fields, **doc}], TABLES, ["ORU^R01"])
    return mapper.convert(MESSAGE)


def test_scalars_transforms_and_lookup():
    result = convert({
        "patient.birth_date": {"from": "PID-7", "transform": "datetime"},
        "patient.gender": {"from": "PID-8", "lookup": "sex"},
        "patient.sex_code": "PID-8",
        "message.sent_at": {"from": "MSH-7", "transform": "datetime"},
        "message.type": {"from": "MSH-9.1", "transform": "lower"},
        "message.source_format": {"value": "hl7v2"},
        "encounter.class": {"from": "PV1-2", "default": "unknown"},
    })
    assert result.record["patient"] == {
        "birth_date": "1980-01-02", "gender": "female", "sex_code": "F",
    }
    assert result.record["message"]["sent_at"] == "2024-01-02T03:04:05+01:00"
    assert result.record["message"]["type"] == "oru"
    assert result.record["encounter"]["class"] == "unknown"
    assert result.covered and result.issues == ()


def test_each_repetition_with_relative_paths():
    result = convert({"patient.identifiers": {
        "each": "PID-3[*]", "fields": {"value": ".1", "assigning_authority": ".4", "type": ".5"},
    }})
    assert result.record["patient"]["identifiers"] == [
        {"value": "111", "assigning_authority": "MRN", "type": "MR"},
        {"value": "222", "assigning_authority": "SSA", "type": "SS"},
    ]


def test_each_segment_with_parent_nested_lists_and_cases():
    result = convert({"results": {
        "each": "OBX[*]", "parent": "OBR",
        "fields": {
            "order_placer_id": "^-2",
            "code": "-3.1",
            "value": {"cases": [
                {"when": {"from": "-2", "eq": "NM"}, "from": "-5", "transform": "number"},
                {"from": "-5"},
            ]},
            "abnormal_flags": {"each": "-8[*]", "value": ".1"},
        },
    }})
    assert result.record["results"] == [
        {"order_placer_id": "P1", "code": "GLU", "value": 7.5, "abnormal_flags": ["H", "A"]},
        {"order_placer_id": "P1", "code": "NOTE", "value": "see comment"},
        {"order_placer_id": "P2", "code": "K", "value": "abc", "abnormal_flags": ["N"]},
    ]
    assert [str(i) for i in result.issues] == [
        "OBX[3]-5 -> results[*].value: not a number; kept as text"
    ]


def test_child_first_of_and_join():
    result = convert({
        "orders": {"each": "ORC[*]", "child": "OBR", "fields": {
            "placer_id": {"first_of": ["-9", ">-2"]},
            "code": ">-4.1",
        }},
        "documents": {"each": "TXA[*]", "fields": {"id": "-1"}},
        "patient.names": {"each": "OBX[*]", "value": "-3.2", "join": "; "},
    })
    assert result.record["orders"] == [{"placer_id": "P1", "code": "GLU"}]
    assert result.record["documents"] == []
    assert result.record["patient"]["names"] == "Glucose; Note; Potassium"


def test_unmapped_code_and_bad_date_are_issues_without_values():
    message = parse("MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rPID|1||9||DOE||19629999|Q\r")
    mapper = Mapper([{"id": "t", "fields": {
        "patient.gender": {"from": "PID-8", "lookup": "sex"},
        "patient.birth_date": {"from": "PID-7", "transform": "date"},
    }}], TABLES)
    result = mapper.convert(message)
    assert result.record["patient"] == {}
    assert [str(i) for i in result.issues] == [
        "PID-8 -> patient.gender: code is not in lookup table sex",
        "PID-7 -> patient.birth_date: not a valid HL7 date/time",
    ]
    assert not result.covered


def test_applies_to_requires_and_excludes():
    mapper = Mapper([
        {"id": "adt-only", "applies_to": ["ADT^*"], "fields": {"message.type": "MSH-9.1"}},
        {"id": "needs-zzz", "requires_segment": "ZZZ", "fields": {"message.event": "MSH-9.2"}},
        {"id": "no-orc", "excludes_segment": "ORC", "fields": {"message.structure": "MSH-9.3"}},
        {"id": "oru", "applies_to": ["ORU^R01"], "fields": {"message.control_id": "MSH-10"}},
    ], TABLES)
    result = mapper.convert(MESSAGE)
    assert result.record["message"] == {"control_id": "C1"}
    assert result.mappings == ("oru",)


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"patient.sex_code": 0.1}, "write relative HL7 paths in quotes"),
        ({"patient.sex_code": "PID.8"}, "is not an HL7 path"),
        ({"patient.gender": {"from": "PID-8", "lookup": "nope"}}, "no lookup table 'nope'"),
        ({"patient.gender": {"from": "PID-8", "transform": "shout"}}, "unknown transform 'shout'"),
        ({"patient.gender": {"lookup": "sex"}}, "give one of from, value, first_of, cases"),
        ({"results": {"each": "OBX", "fields": {}}}, "each needs a path ending in [*]"),
        ({"results": {"each": "OBX[*]"}}, "each needs fields (objects) or value (scalars)"),
        (
            {"x": {"cases": [{"when": {"from": "PID-8"}, "value": 1}]}},
            "give one of eq, in or exists",
        ),
        ({"x": {"from": "OBX-5.1", "type_from": "OBX-2"}}, "from to name a whole field"),
        ({"x": {"type_from": "OBX-2"}}, "from to name a whole field"),
        ({"x": {"from": "OBX-5", "type_from": "OBX-2", "transform": "number"}},
         "it takes no transform"),
        ({"x": {"from": "OBX-5", "type_from": "OBX.2"}}, "is not an HL7 path"),
    ],
)
def test_bad_mappings_name_document_and_key(fields, fragment):
    with pytest.raises(MappingError) as caught:
        Mapper([{"id": "doc", "fields": fields}], TABLES)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("doc: fields.")


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-Infinity"])
def test_non_finite_numbers_stay_text(text):
    """Regression: float() reads "NaN" and "inf", which JSON cannot carry, so a result
    valued NaN broke every JSON payload built from its record."""
    message = parse("MSH|^~\\&|LAB|H|EHR|H|20240102||ORU^R01|C1|P|2.5.1\r"
                    f"OBX|1|NM|GLU^Glucose^L||{text}|mmol/L\r")
    mapper = Mapper([{"id": "t", "fields": {"results": {
        "each": "OBX[*]", "fields": {"value": {"from": "-5", "transform": "number"}}}}}],
        TABLES, ["ORU^R01"])
    result = mapper.convert(message)
    assert result.record["results"] == [{"value": text}]
    assert [i.problem for i in result.issues] == ["not a number; kept as text"]
