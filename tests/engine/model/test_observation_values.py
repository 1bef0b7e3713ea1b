"""Result values: OBX-5 read by its data type (OBX-2) into one canonical shape, for
every value type the sample corpus holds, through the shipped results mapping."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from engine.hl7v2 import parse
from engine.model.canonical import canonical_errors
from engine.model.mapping import Conversion, Mapper
from engine.rules.source import read_rule_source
from tests.samples import read

ROOT = Path(__file__).resolve().parents[3]


@cache
def results_mapper() -> Mapper:
    """The shipped results mapping, applied to any message type: the corpus holds CE and
    DT only in VXU messages and HD only in MDM, which the mapping does not apply to."""
    source = read_rule_source(ROOT)
    document = next(doc.data for doc in source.of_kind("mapping")
                    if doc.data.get("id") == "results")
    return Mapper([{**document, "applies_to": ["*"]}], source.tables)


def convert(raw: bytes | str) -> Conversion:
    conversion = results_mapper().convert(parse(raw))
    # Only results are mapped here, so the envelope the schema requires is missing.
    assert [error for error in canonical_errors(conversion.record)
            if error[0].startswith("results")] == []
    return conversion


# One real OBX of each value type in the corpus: (file, which OBX, its canonical value).
CORPUS_VALUES = {
    "NM": ("fhir-converter/LRI_2.0-NG_CBC_Typ_Message.hl7", 1,
           {"type": "NM", "number": 4.41}),
    "SN": ("fhir-converter/ORU-R01-RMGEAD.hl7", 1, {"type": "SN", "number": 182}),
    "ST": ("fhir-converter/REF-I14-01.hl7", 1, {"type": "ST", "text": "Positive"}),
    "TX": ("fhir-converter/LRI_2.0-NG_CBC_Typ_Message.hl7", 26,
           {"type": "TX", "text": "Many spherocytes present."}),
    "FT": ("hl7-v2-to-fhir/MDM_T02.hl7", 2, None),  # long: checked on its own below
    "CWE": ("fhir-converter/OML-O21-01.hl7", 1,
            {"type": "CWE", "code": {"code": "27268008", "display": "Salmonella",
                                     "system": "SCT"},
             "text": "Salmonella species"}),
    "CE": ("fhir-converter/VXU-V04-01.hl7", 3,
           {"type": "CE", "code": {"code": "V01", "display": "Not VFC Eligible",
                                   "system": "HL70064"}}),
    "DT": ("fhir-converter/VXU-V04-01.hl7", 5, {"type": "DT", "datetime": "2021-08-18"}),
    "TS": ("fhir-converter/MDHHS-OML-O21-1.hl7", 1,
           {"type": "TS", "datetime": "2015-08-18T06:06:05-05:00"}),
    "HD": ("fhir-converter/MDM-T02-01.hl7", 1,
           {"type": "HD", "text": "1.2.840.317.5947431.51"}),
    "FN": ("python-hl7/sample_oru.hl7", 2, {"type": "FN", "text": "182"}),
    "RP": ("fhir-converter/OML-O21-01.hl7", 2,
           {"type": "RP", "attachment": {"pointer": "https://testurl.com",
                                         "data_type": "image", "subtype": "PICT"}}),
    "ED": ("fhir-converter/OML-O21-03.hl7", 1,
           {"type": "ED", "attachment": {"data_type": "IM", "subtype": "JPEG",
                                         "encoding": "Base64", "data_at": "OBX[1]-5.5"}}),
}


def corpus_result(value_type: str) -> dict:
    name, occurrence, _ = CORPUS_VALUES[value_type]
    message = parse(read(name))
    assert message.get(f"OBX[{occurrence}]-2") == value_type  # the example is what it says
    return convert(read(name)).record["results"][occurrence - 1]


@pytest.mark.parametrize("value_type", [t for t, (_, _, v) in CORPUS_VALUES.items() if v])
def test_each_value_type_in_the_corpus_has_its_canonical_value(value_type):
    assert corpus_result(value_type)["value"] == CORPUS_VALUES[value_type][2]


def test_formatted_text_keeps_its_line_breaks():
    value = corpus_result("FT")["value"]
    assert value["type"] == "FT" and set(value) == {"type", "text"}
    assert value["text"].startswith("Critical Values Entered On:  08/22/2023 2:11 EDT \n")
    assert "\\.br\\" not in value["text"]


def test_the_abnormal_sn_result_has_its_value_unit_range_and_flag():
    """Regression: OBX-5 ``^182`` was read as its first component, which is empty, so
    the abnormal glucose reached the nurse's review without a value."""
    result = corpus_result("SN")
    assert {key: result.get(key) for key in (
        "code", "value", "units", "reference_range", "abnormal_flags")} == {
        "code": "1554-5", "value": {"type": "SN", "number": 182}, "units": "mg/dl",
        "reference_range": "70_105", "abnormal_flags": ["H"]}


def test_a_coded_value_keeps_its_coding_system_apart_from_its_text():
    """Regression: a CWE value was its code alone; its coding system (CWE-3) and its
    original text (CWE-9) were lost."""
    value = corpus_result("CWE")["value"]
    assert value["code"]["system"] == "SCT"
    assert value["text"] == "Salmonella species"


def test_embedded_data_is_referenced_not_copied():
    conversion = convert(read("fhir-converter/OML-O21-03.hl7"))
    assert "VGhpcyBpcyBhIEJhc2U2NCBzdHJpbmc=" not in json.dumps(conversion.record)


def test_no_result_keeps_a_value_type_apart_from_its_value():
    for value_type in CORPUS_VALUES:
        assert "value_type" not in corpus_result(value_type)


ORU = ("MSH|^~\\&|LAB|H|EHR|H|20240102||ORU^R01|C1|P|2.5.1\r"
       "OBR|1|P1|F1|GLU^Glucose^LN\r")


@pytest.mark.parametrize(
    "value_type, field, value",
    [
        ("SN", ">^100", {"type": "SN", "comparator": ">", "number": 100}),
        ("SN", "<=^0.5", {"type": "SN", "comparator": "<=", "number": 0.5}),
        ("SN", "^10^-^20", {"type": "SN", "low": 10, "high": 20}),
        ("SN", "^1^:^128", {"type": "SN", "numerator": 1, "denominator": 128}),
        ("SN", "^1^/^3", {"type": "SN", "numerator": 1, "denominator": 3}),
        ("SN", "^2^+", {"type": "SN", "text": "2+"}),
        ("NM", "-7.25", {"type": "NM", "number": -7.25}),
        ("TX", "first line~second line", {"type": "TX", "text": "first line\nsecond line"}),
        ("ST", "see \\T\\ note", {"type": "ST", "text": "see & note"}),
        ("CWE", "^^^^^^^^Bacterial culture", {"type": "CWE", "text": "Bacterial culture"}),
        ("CNE", "Y^Yes^HL70136", {"type": "CNE", "code": {"code": "Y", "display": "Yes",
                                                         "system": "HL70136"}}),
        ("DTM", "202401020304+0130", {"type": "DTM", "datetime": "2024-01-02T03:04+01:30"}),
        ("TS", "2024", {"type": "TS", "datetime": "2024"}),
        ("RP", "ref-1^PACS&1.2.3&ISO^IM^DICOM",
         {"type": "RP", "attachment": {"pointer": "ref-1", "application": "PACS",
                                       "data_type": "IM", "subtype": "DICOM"}}),
        ("ED", "LAB^AP^PDF^Base64^JVBERi0=",
         {"type": "ED", "attachment": {"application": "LAB", "data_type": "AP",
                                       "subtype": "PDF", "encoding": "Base64",
                                       "data_at": "OBX[1]-5.5"}}),
        ("HD", "LAB^2.16.840.1.1^ISO", {"type": "HD", "text": "LAB 2.16.840.1.1 ISO"}),
        ("", "free", {"text": "free"}),
        ("ZZ", "odd^value", {"type": "ZZ", "text": "odd"}),
    ],
)
def test_values_by_type(value_type, field, value):
    conversion = convert(ORU + f"OBX|1|{value_type}|GLU^Glucose^LN||{field}|mg/dL\r")
    assert conversion.record["results"][0]["value"] == value
    assert conversion.issues == ()


@pytest.mark.parametrize(
    "value_type, field, value, problem",
    [
        ("NM", "abc", {"type": "NM", "text": "abc"}, "not a number; kept as text"),
        ("NM", "NaN", {"type": "NM", "text": "NaN"}, "not a number; kept as text"),
        ("SN", "ca^5", {"type": "SN", "text": "ca5"},
         "not a structured numeric (SN) value; kept as text"),
        ("DT", "2024-01-02", {"type": "DT", "text": "2024-01-02"},
         "not a valid HL7 date/time; kept as text"),
    ],
)
def test_values_not_of_their_type_are_issues_that_name_no_value(
        value_type, field, value, problem):
    conversion = convert(ORU + f"OBX|1|{value_type}|GLU^Glucose^LN||{field}\r")
    assert conversion.record["results"][0]["value"] == value
    assert [str(issue) for issue in conversion.issues] == [
        f"OBX[1]-5 -> results[*].value: {problem}"]


@pytest.mark.parametrize(
    "value_type, field, value",
    [
        ("NM", "80~120", {"type": "NM", "number": 80,
                          "repetitions": [{"number": 80}, {"number": 120}]}),
        ("CWE", "A^Alpha^L~B^Beta^L", {
            "type": "CWE", "code": {"code": "A", "display": "Alpha", "system": "L"},
            "repetitions": [{"code": {"code": "A", "display": "Alpha", "system": "L"}},
                            {"code": {"code": "B", "display": "Beta", "system": "L"}}]}),
        ("NM", "80~", {"type": "NM", "number": 80}),
    ],
)
def test_a_repeating_value_keeps_every_repetition(value_type, field, value):
    """The v2-to-FHIR IG's OBX[Observation-Component]: one component per repetition."""
    conversion = convert(ORU + f"OBX|1|{value_type}|GLU^Glucose^LN||{field}\r")
    assert conversion.record["results"][0]["value"] == value
    assert conversion.issues == ()


def test_an_empty_value_is_no_value():
    conversion = convert(ORU + "OBX|1|NM|GLU^Glucose^LN||\"\"|mg/dL\r"
                         "OBX|2|NM|GLU^Glucose^LN|||mg/dL\r")
    assert [result.get("value") for result in conversion.record["results"]] == [None, None]


NOT_A_CODING_SYSTEM = "not a coding system name (it holds spaces); left out"


def test_text_where_the_coding_system_goes_is_not_taken_for_one():
    """Regression: the glucose's OBX-3 sends the test's name where its coding system
    goes (``1554-5^GLUCOSE^POST 12H CFST:MCNC:PT:SER/PLAS:QN``), and the result's
    system held that text."""
    conversion = convert(read("fhir-converter/ORU-R01-RMGEAD.hl7"))
    [result] = conversion.record["results"]
    assert (result["code"], result["display"], result.get("system")) == (
        "1554-5", "GLUCOSE", None)
    assert [str(issue) for issue in conversion.issues] == [
        f"OBX[1]-3.3 -> results[*].system: {NOT_A_CODING_SYSTEM}"]


def test_a_coded_value_with_text_for_its_coding_system_keeps_its_code():
    conversion = convert(ORU + "OBX|1|CWE|GLU^Glucose^LN||Y^Yes^Yes or no answer\r")
    assert conversion.record["results"][0]["value"] == {
        "type": "CWE", "code": {"code": "Y", "display": "Yes"}}
    assert [str(issue) for issue in conversion.issues] == [
        f"OBX[1]-5 -> results[*].value: its coding system (CWE-3) is {NOT_A_CODING_SYSTEM}"]


@pytest.mark.parametrize("system", ["LN", "SCT", "L", "99zzz", "HL70078", "ISO+",
                                    "urn:oid:2.16.840.1.113883.6.1", "http://loinc.org"])
def test_coding_system_names_are_kept(system):
    conversion = convert(ORU + f"OBX|1|CWE|GLU^Glucose^{system}||Y^Yes^{system}\r")
    [result] = conversion.record["results"]
    assert (result["system"], result["value"]["code"]["system"]) == (system, system)
    assert conversion.issues == ()
