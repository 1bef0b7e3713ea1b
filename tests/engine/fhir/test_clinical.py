"""The clinical sections as FHIR R4: AL1 and IAM to AllergyIntolerance, DG1 to Condition
and Encounter.diagnosis, PRB to a problem-list Condition, PR1 to Procedure, after the
v2-to-FHIR IG; valid R4B, references resolving inside the Bundle, times keeping their
offsets, nothing the record does not hold, and the same ids for the same message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.hl7v2 import parse
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import ROOT, by_url, checked_bundle, convert, mapper, resources

CONVERTER = ROOT / "tests" / "corpus" / "hl7v2" / "fhir-converter"
ADT_A01 = CONVERTER / "ADT-A01-01.hl7"
ADT_A60 = CONVERTER / "ADT-A60-01.hl7"
REF_I12 = CONVERTER / "REF-I12-01.hl7"
DFT_P11 = CONVERTER / "DFT-P11-01.hl7"
PC1_ADD = CONVERTER / "PC1-Problem-Add-v2.3.1.hl7"
CLINICAL = ("AllergyIntolerance", "Condition", "Procedure")
SCT = "http://snomed.info/sct"


def record_of(message: bytes | str) -> dict[str, Any]:
    raw = message.encode() if isinstance(message, str) else message
    return mapper().convert(parse(raw)).record


def bundle_of(record: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
    return checked_bundle(record, message_id)




def message(*segments: str) -> str:
    return "\r".join(("MSH|^~\\&|APP|FAC|EHR|FAC|20240101120000||ADT^A08|C1|P|2.5",
                      "PID|1||12345^^^HOSP^MR||DOE^JANE||19800102|F", *segments))


# ---- AL1 and IAM -> AllergyIntolerance ------------------------------------------------

def test_an_al1_gives_an_allergy_of_the_patient() -> None:
    bundle = bundle_of(convert(ADT_A01))
    [allergy] = resources(bundle, "AllergyIntolerance")
    assert allergy["code"] == {"coding": [{"code": "P", "display": "PENICILLIN"}]}
    assert allergy["category"] == ["environment"]  # EA, AllergenType concept map
    assert allergy["type"] == "allergy"
    assert allergy["criticality"] == "low"  # MI
    assert allergy["clinicalStatus"]["coding"][0]["code"] == "active"
    assert allergy["reaction"] == [{"manifestation": [{"text": "CODE16"}]}]
    assert allergy["onsetDateTime"] == "2021-08-24"
    assert by_url(bundle, allergy["patient"])["resourceType"] == "Patient"


def test_an_iam_gives_an_allergy_with_its_identifier_dates_and_clinician_code() -> None:
    [allergy] = resources(bundle_of(convert(ADT_A60)), "AllergyIntolerance")
    assert [c["code"] for c in allergy["code"]["coding"]] == ["12345", "91935009"]
    assert allergy["identifier"] == [{"system": "urn:oid:1.3.6.1.4.1.44750.1.4",
                                      "value": "56789", "assigner": {"display": "Cona_Health"}}]
    assert allergy["category"] == ["food"]
    assert allergy["onsetDateTime"] == "2018-05"
    # No offset was sent with IAM-13: FHIR gets the date, never a made-up offset.
    assert allergy["recordedDate"] == "2020-10-05"


@pytest.mark.parametrize("segment, category, criticality", [
    ("AL1|1|MA|X1^Latex^L|SV", None, "high"),  # MA has no FHIR category
    ("AL1|1|DA|X1^Latex^L|MO", "medication", None),  # MO has no criticality
    ("AL1|1||X1^Latex^L", None, None),
])
def test_unmapped_allergy_codes_are_left_out(segment, category, criticality) -> None:
    [allergy] = resources(bundle_of(record_of(message(segment))), "AllergyIntolerance")
    assert allergy.get("category") == ([category] if category else None)
    assert allergy.get("criticality") == criticality


# ---- DG1 -> Condition, Encounter.diagnosis ----------------------------------------------

def test_a_dg1_gives_a_condition_and_the_encounters_diagnosis() -> None:
    bundle = bundle_of(convert(ADT_A01))
    [condition] = resources(bundle, "Condition")
    assert condition["code"]["coding"] == [{"system": SCT, "code": "422504002",
                                            "display": "Ischemic stroke(disorder)"}]
    assert condition["code"]["text"] == "Stroke"  # DG1-4
    assert condition["onsetDateTime"] == "2004-01-25T11:40:25+04:20"  # DG1-5, offset kept
    assert condition["recordedDate"] == "2020-05-01T13:30:15+02:15"  # DG1-19
    assert condition["extension"] == [{
        "url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate",
        "valueDateTime": "2020-05-01T13:30:15+02:15"}]
    assert condition["identifier"][0]["value"] == "DI20"
    assert "verificationStatus" not in condition  # DG1-21 A maps to nothing
    asserter = by_url(bundle, condition["asserter"])
    assert asserter["resourceType"] == "Practitioner"
    assert asserter["name"] == [{"family": "DIAG", "given": ["ROBIN"]}]
    [encounter] = resources(bundle, "Encounter")
    assert condition["encounter"] == {"reference": next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"] is encounter)}
    [diagnosis] = encounter["diagnosis"]
    assert by_url(bundle, diagnosis["condition"]) is condition
    assert diagnosis["use"]["coding"] == [{
        "system": "http://terminology.hl7.org/CodeSystem/diagnosis-role", "code": "AD"}]
    assert diagnosis["rank"] == 1


def test_a_parent_diagnosis_is_a_condition_the_child_is_due_to() -> None:
    bundle = bundle_of(convert(REF_I12))
    conditions = resources(bundle, "Condition")
    [child] = [c for c in conditions if "code" in c]
    [due_to] = [e for e in child["extension"] if e["url"].endswith("condition-dueTo")]
    parent = by_url(bundle, due_to["valueReference"])
    assert parent["identifier"] == [{"value": "DG1001"}]
    assert by_url(bundle, parent["subject"])["resourceType"] == "Patient"
    assert len(conditions) == 2


def test_a_deleted_diagnosis_is_entered_in_error_and_without_a_visit_has_no_encounter() -> None:
    bundle = bundle_of(record_of(message("DG1|1||J45^Asthma^I10|||W|||||||||||||||D")))
    [condition] = resources(bundle, "Condition")
    assert condition["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "encounter" not in condition and "category" not in condition
    assert condition["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10"


def test_each_dg1_gives_its_own_condition_and_the_same_clinician_one_practitioner() -> None:
    bundle = bundle_of(convert(DFT_P11))
    codes = [c["code"]["coding"][0]["code"] for c in resources(bundle, "Condition")]
    assert codes == ["29857009", "68235000", "K63.3"]
    asserters = {c["asserter"]["reference"] for c in resources(bundle, "Condition")}
    assert len(asserters) == 2 and len(resources(bundle, "Practitioner")) >= 2


# ---- PRB -> Condition on the problem list -------------------------------------------------

def test_a_prb_gives_a_problem_list_condition() -> None:
    bundle = bundle_of(convert(PC1_ADD))
    [problem] = resources(bundle, "Condition")
    assert problem["code"]["coding"] == [{"code": "596.5", "display": "BLADDER DYSFUNCTION"}]
    assert problem["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert problem["onsetDateTime"] == "2004-06-29"  # PRB-16
    assert problem["recordedDate"] == "2004-06-29"  # PRB-7
    assert problem["identifier"] == [{"value": "26744"}]
    # Its ACTIVE is in PRB-13 (confirmation status), not PRB-14 (life cycle status):
    # the status is not known, and the required value set has no "unknown".
    assert "clinicalStatus" not in problem


def test_an_abated_problem_without_a_status_is_inactive() -> None:
    record = record_of("\r".join((
        "MSH|^~\\&|A|F|B|F|20240101||PPR^PC1|C2|P|2.3.1",
        "PID|||1^^^H^MR||DOE^JO",
        "PRB|AD|20240101|R51^Headache^I10||||||20240301")))
    [problem] = resources(bundle_of(record), "Condition")
    # con-4: an abated condition's clinicalStatus is inactive, resolved or remission
    assert problem["clinicalStatus"]["coding"][0]["code"] == "inactive"


@pytest.mark.parametrize("status, expected", [("RESOLVED", "resolved"), ("active", "active")])
def test_a_problems_life_cycle_status_is_its_clinical_status(status, expected) -> None:
    # "active" with an abatement date contradicts itself; the sender's status is kept.
    record = record_of("\r".join((
        "MSH|^~\\&|A|F|B|F|20240101||PPR^PC1|C2|P|2.3.1",
        "PID|||1^^^H^MR||DOE^JO",
        f"PRB|AD|20240101|R51^Headache^I10||||||20240301|||||{status}")))
    [problem] = resources(bundle_of(record), "Condition")
    assert problem["clinicalStatus"]["coding"][0]["code"] == expected
    assert problem["abatementDateTime"] == "2024-03-01"  # PRB-9


# ---- PR1 -> Procedure ---------------------------------------------------------------------

def test_a_pr1_gives_a_procedure_with_its_period_performers_and_parent() -> None:
    bundle = bundle_of(convert(ADT_A01))
    [procedure] = [p for p in resources(bundle, "Procedure") if "code" in p]
    assert procedure["code"]["coding"][0] == {
        "system": SCT, "code": "76164006", "display": "Biopsy of colon (procedure)"}
    assert procedure["code"]["text"] == "Biopsy of colon, which was part of colonoscopy"
    assert procedure["status"] == "unknown"
    # PR1-5 to the minute, PR1-7 two minutes: a period, the offset kept.
    assert procedure["performedPeriod"] == {"start": "2005-01-25T11:40:00+01:00",
                                            "end": "2005-01-25T11:42:00+01:00"}
    assert procedure["category"]["coding"][0]["code"] == "D"
    functions = [p.get("function", {}).get("coding", [{}])[0].get("code")
                 for p in procedure["performer"]]
    assert functions == ["88189002", "304292004", None]
    surgeon = by_url(bundle, procedure["performer"][1]["actor"])
    assert surgeon["name"][0]["family"] == "Patrick"
    assert by_url(bundle, procedure["location"])["name"] == "OT, 201"
    assert procedure["reasonCode"][0]["coding"][0]["code"] == "799008"
    assert procedure["identifier"] == [{"value": "PR1006"}]
    [parent] = [by_url(bundle, part) for part in procedure["partOf"]]
    assert parent["identifier"] == [{"value": "PR1001"}] and parent["status"] == "unknown"
    assert by_url(bundle, procedure["encounter"])["resourceType"] == "Encounter"


def test_a_procedure_with_a_date_only_is_performed_that_day() -> None:
    [procedure] = resources(bundle_of(convert(DFT_P11)), "Procedure")
    assert procedure["performedDateTime"] == "2019-11-22"
    assert procedure["code"]["coding"][0]["system"] == "http://www.ama-assn.org/go/cpt"


# ---- minimum necessary, determinism, validation ---------------------------------------------

def test_a_scope_without_the_clinical_sections_gives_none_of_their_resources() -> None:
    record = compile_scope(["patient", "encounter"]).project(convert(ADT_A01))
    bundle = bundle_of(record)
    assert not any(resources(bundle, kind) for kind in CLINICAL)
    assert "diagnosis" not in resources(bundle, "Encounter")[0]


def test_a_scope_with_some_fields_gives_resources_with_only_those() -> None:
    scope = compile_scope(["patient.identifiers", "diagnoses[*].code", "allergies[*].reactions",
                           "procedures[*].set_id"])
    bundle = bundle_of(scope.project(convert(ADT_A01)))
    [condition] = resources(bundle, "Condition")
    assert set(condition) == {"resourceType", "id", "code", "subject"}
    [allergy] = resources(bundle, "AllergyIntolerance")
    assert set(allergy) == {"resourceType", "id", "clinicalStatus", "patient", "reaction"}
    # A procedure minimised to its set id says nothing: no resource.
    assert resources(bundle, "Procedure") == [] and resources(bundle, "Practitioner") == []


def test_without_the_patient_a_required_subject_is_marked_absent() -> None:
    bundle = bundle_of(compile_scope(["diagnoses[*].code"]).project(convert(ADT_A01)))
    [condition] = resources(bundle, "Condition")
    assert condition["subject"]["extension"][0]["valueCode"] == "unknown"


def test_the_same_message_gives_the_same_ids() -> None:
    record = convert(ADT_A01)
    first, second = bundle_of(record, "a01"), bundle_of(record, "a01")
    assert first == second
    other = bundle_of(record, "a01-again")

    def urls(bundle: dict[str, Any], kinds: tuple[str, ...]) -> set[str]:
        return {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] in kinds}

    assert urls(first, CLINICAL).isdisjoint(urls(other, CLINICAL))
    # The practitioners a message names keep their ids across messages.
    assert urls(first, ("Practitioner",)) == urls(other, ("Practitioner",))


@pytest.mark.parametrize("path", sorted(CONVERTER.glob("*.hl7")), ids=lambda p: p.stem)
def test_every_converter_sample_gives_valid_clinical_resources(path: Path) -> None:
    bundle_of(convert(path), path.stem)


def test_medplum_accepts_the_clinical_resources(fhir_validator) -> None:
    checked = 0
    for path in (ADT_A01, ADT_A60, REF_I12, PC1_ADD):
        bundle = bundle_of(convert(path), path.stem)
        for kind in CLINICAL:
            for resource in resources(bundle, kind):
                assert fhir_validator.validate(resource) == [], (path.stem, kind)
                checked += 1
    assert checked >= 9
