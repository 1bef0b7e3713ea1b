"""to_canonical: hand-written FHIR documents become canonical records that validate and
carry the values sent."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.fhir import FhirError, read_fhir, to_canonical
from engine.model.canonical import canonical_errors
from tests.engine.fhir.corpus import SAMPLE_NAMES, body, sample
from tests.engine.fhir.test_read import MINIMAL, damaged_documents

RECEIVED_AT = datetime(2024, 5, 2, 9, 0, 0, 250000, tzinfo=UTC)
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.4242.1"
SECTIONS = ["message", "patient", "encounter", "orders", "results", "appointments",
            "referrals", "documents", "merge", "tasks"]


def canonical(name_or_document):
    document = (sample(name_or_document) if isinstance(name_or_document, str)
                else name_or_document)
    record = to_canonical(read_fhir(body(document)), received_at=RECEIVED_AT)
    assert canonical_errors(record) == []
    return record


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_validates_with_every_section(name):
    record = canonical(name)
    # The core sections always; the others only when the document carries them.
    assert list(record)[:len(SECTIONS)] == SECTIONS
    assert all(record[extra] for extra in list(record)[len(SECTIONS):])
    assert record["message"]["source_format"] == "fhir-r4"


@pytest.mark.parametrize("resource_type", sorted(MINIMAL))
def test_a_minimal_resource_validates(resource_type):
    record = canonical(MINIMAL[resource_type])
    assert record["message"] == {"source_format": "fhir-r4", "sent_at": RECEIVED_AT.isoformat(),
                                 "type": resource_type, "event": None}


def test_patient():
    record = canonical("patient.json")
    assert record["message"] == {
        "source_format": "fhir-r4", "control_id": "Patient/pat-204417",
        # meta.lastUpdated is when it was sent, UTC written as an offset
        "sent_at": "2024-05-02T09:15:00+00:00", "type": "Patient", "event": None,
    }
    patient = record["patient"]
    assert patient["identifiers"] == [
        {"value": "MRN-204417", "assigning_authority": MRN_SYSTEM, "type": "MR"},
        {"value": "C-99812", "assigning_authority": "RIVERSIDE", "type": "Riverside patient card"},
    ]
    assert patient["names"] == [
        {"family": "Okafor", "given": "Adaeze", "middle": "Ngozi", "prefix": "Ms.",
         "use": "official"},
        {"family": "Eze", "given": "Adaeze", "use": "maiden"},
    ]
    assert patient["birth_date"] == "1984-03-17"
    assert patient["gender"] == "female"
    assert patient["addresses"] == [{
        "line1": "12 Willow Lane", "line2": "Apt 4", "city": "Riverside", "state": "CA",
        "postal_code": "92501", "country": "US", "type": "H"}]
    # the HL7 codes of XTN-2 and XTN-3, as records from HL7 v2 carry them
    assert patient["telecom"] == [
        {"value": "+1 555 0142", "use": "PRN", "equipment": "PH"},
        {"value": "+1 555 0199", "equipment": "CP"},
        {"value": "a.okafor@example.org", "equipment": "Internet",
         "email": "a.okafor@example.org"},
    ]
    assert patient["marital_status"] == {
        "code": "M", "display": "Married",
        "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"}
    assert patient["language"]["code"] == "en-US"
    assert patient["deceased"] is False
    assert patient["primary_care_provider"] == {
        "id": "1234567893", "assigning_authority": "http://hl7.org/fhir/sid/us-npi"}
    assert patient["primary_facility"] == "Riverside Health"
    assert record["encounter"] == {} and record["results"] == []


def test_a_single_observation():
    record = canonical("observation.json")
    assert record["message"]["control_id"] == "Observation/glu-88121"
    assert record["message"]["sent_at"] == "2024-05-02T08:01:12.5+02:00"
    # no Patient resource: the subject's identifier identifies the patient
    assert record["patient"] == {"identifiers": [
        {"value": "MRN-204417", "assigning_authority": MRN_SYSTEM}]}
    assert record["results"] == [{
        "code": "2345-7", "display": "Glucose [Mass/volume] in Serum or Plasma",
        "system": "http://loinc.org", "value": {"type": "NM", "number": 182}, "units": "mg/dL",
        "reference_range": "70-99", "abnormal_flags": ["H"],
        # a v3 ObservationInterpretation code is the mapped interpretation as well
        "interpretations": ["H"], "status": "final",
        # seven fraction digits cut to the six the canonical schema allows
        "observed_at": "2024-05-02T07:45:10.123456+00:00",
    }]


def test_a_lab_report_links_results_to_their_order():
    record = canonical("lab-report-bundle.json")
    assert record["message"] == {
        "source_format": "fhir-r4",
        "control_id": "urn:oid:2.16.840.1.113883.3.4242.9|LAB-2024-0007731",
        "sent_at": "2024-05-02T10:30:00+02:00", "type": "Bundle", "event": "collection",
    }
    assert record["patient"]["identifiers"][0]["value"] == "MRN-551903"
    assert record["encounter"] == {
        "visit_number": "V-300918", "class": "AMB", "status": "finished",
        "location": {"description": "North Clinic, Room 3"},
        "admit_at": "2024-05-02T08:10:00+02:00", "discharge_at": "2024-05-02T08:40:00+02:00",
        "attending": {"id": "PR-0417"},
    }
    assert record["orders"] == [{
        "placer_id": "ORD-44120", "filler_id": "LAB-99812", "code": "58410-2",
        "display": "CBC panel - Blood by Automated count", "system": "http://loinc.org",
        "priority": "R", "status": "completed", "ordered_at": "2024-05-02T08:20:00+02:00",
        "ordering_provider": {"id": "PR-0417"},
    }]
    results = record["results"]
    assert [(r.get("code"), r["value"], r["status"]) for r in results] == [
        ("718-7", {"type": "NM", "number": 13.2}, "final"),
        ("6690-2", {"type": "NM", "number": 12.1}, "preliminary"),
        (None, {"type": "ST", "text": "Slight haemolysis; potassium not reported."}, "final")]
    # the first two through the DiagnosticReport, the third through its own basedOn
    assert all((r["order_placer_id"], r["order_filler_id"]) == ("ORD-44120", "LAB-99812")
               for r in results)
    assert results[0]["reference_range"] == "13.5-17.5"
    assert results[1]["abnormal_flags"] == ["H"]
    assert results[2]["display"] == "Specimen comment"


def test_an_appointment():
    record = canonical("appointment-bundle.json")
    # a batch says nothing of when it was sent: the arrival time stands in
    assert record["message"] == {"source_format": "fhir-r4",
                                 "sent_at": "2024-05-02T09:00:00.250000+00:00",
                                 "type": "Bundle", "event": "batch"}
    assert record["appointments"] == [{
        "placer_id": "APT-20240611-17", "filler_id": "SCH-771",
        "reason": {"display": "Review of glucose results"},
        "type": {"code": "FOLLOWUP", "display": "A follow up visit",
                 "system": "http://terminology.hl7.org/CodeSystem/v2-0276"},
        "start": "2024-06-11T09:30:00-07:00", "end": "2024-06-11T10:00:00-07:00",
        "duration_minutes": 30, "status": "booked", "location": "North Clinic, Room 3",
        "provider": {"id": "PR-0417"},
    }]


def test_a_document():
    record = canonical("document-bundle.json")
    assert record["message"]["event"] == "transaction"
    assert record["encounter"]["visit_number"] == "V-300918"
    assert record["documents"] == [{
        "id": "urn:oid:1.2.840.113619.2.62.994044785528.114289542805",
        "type": "11506-3",
        # FHIR's docStatus and status, read back as the TXA-17 and TXA-19 codes
        "status": "AU", "availability": "AV",
        "created_at": "2024-05-02T10:58:00+02:00", "activity_at": "2024-05-02T08:10:00+02:00",
        "author": {"id": "PR-0417"}, "filename": "progress-note-2024-05-02.txt",
        "text": "Patient seen for follow-up of type 2 diabetes. HbA1c 7.9%. "
                "Plan: increase metformin; recheck in 3 months.",
    }]


@pytest.mark.parametrize("change, path, expected", [
    # FHIR accepts any code for gender; the canonical record only the four it defines
    (lambda p: p.update(gender="intersex"), ("patient", "gender"), None),
    (lambda p: p.update(deceasedDateTime="2024-04-30T23:10:00Z", deceasedBoolean=None),
     ("patient", "deceased_at"), "2024-04-30T23:10:00+00:00"),
    (lambda p: p.update(birthDate="1984-03"), ("patient", "birth_date"), "1984-03"),
    (lambda p: p["name"][0].update(given=[None, "Ngozi"], _given=[{"extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
         "valueCode": "masked"}]}, None]), ("patient", "names", 0, "given"), "Ngozi"),
])
def test_patient_details(change, path, expected):
    patient = copy.deepcopy(sample("patient.json"))
    change(patient)
    node = canonical({key: value for key, value in patient.items() if value is not None})
    for step in path:
        node = node.get(step) if isinstance(node, dict) else node[step]
    assert node == expected


@given(damaged_documents())
def test_whatever_read_fhir_accepts_normalises_to_a_valid_record(document):
    try:
        fhir = read_fhir(body(document))
    except FhirError:
        return
    assert canonical_errors(to_canonical(fhir, received_at=RECEIVED_AT)) == []


@given(st.sampled_from(["male", "female", "other", "unknown", "M", ""]),
       st.sampled_from(["1984", "1984-03", "1984-03-17"]))
def test_patient_values_the_schema_constrains(gender, birth_date):
    patient = {"resourceType": "Patient", "birthDate": birth_date}
    if gender:
        patient["gender"] = gender
    canonical(patient)


@pytest.mark.parametrize("element, value, expected, units", [
    ("valueQuantity", {"value": 182, "unit": "mg/dL"}, {"type": "NM", "number": 182}, "mg/dL"),
    ("valueQuantity", {"value": 100, "comparator": ">", "code": "mg/dL"},
     {"type": "SN", "comparator": ">", "number": 100}, "mg/dL"),
    ("valueInteger", 3, {"type": "NM", "number": 3}, None),
    ("valueString", "Positive", {"type": "ST", "text": "Positive"}, None),
    ("valueCodeableConcept",
     {"coding": [{"system": "http://snomed.info/sct", "code": "27268008",
                  "display": "Salmonella"}], "text": "Salmonella species"},
     {"type": "CWE", "code": {"code": "27268008", "display": "Salmonella",
                              "system": "http://snomed.info/sct"},
      "text": "Salmonella species"}, None),
    ("valueCodeableConcept", {"text": "Bacterial culture"},
     {"type": "CWE", "text": "Bacterial culture"}, None),
    ("valueDateTime", "2015-08-18T06:06:05-05:00",
     {"type": "TS", "datetime": "2015-08-18T06:06:05-05:00"}, None),
    ("valueRange", {"low": {"value": 10, "unit": "mg/dL"}, "high": {"value": 20}},
     {"type": "SN", "low": 10, "high": 20}, "mg/dL"),
    ("valueRatio", {"numerator": {"value": 1}, "denominator": {"value": 128}},
     {"type": "SN", "numerator": 1, "denominator": 128}, None),
])
def test_each_observation_value_becomes_a_canonical_value(element, value, expected, units):
    observation = {"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                   element: value}
    (result,) = canonical(observation)["results"]
    assert result["value"] == expected
    assert result.get("units") == units
