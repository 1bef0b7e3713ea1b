"""The FHIR server and validator fixtures are the real thing: Medplum stores, finds,
counts, validates and refuses as an R4 server does (tests/medplum_fhir.py)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from tests.medplum_fhir import FOLDER, FhirServerUnavailable, node

PATIENT_URN = "urn:uuid:6b1f3c2e-8d4a-4f5b-9c1e-2a3b4c5d6e7f"
OBSERVATION_URN = "urn:uuid:1d2c3b4a-5e6f-4a8b-9c0d-e1f2a3b4c5d6"
MRN = "urn:oid:2.16.840.1.113883.19.5"


def patient(value: str = "12345", **more: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": value}],
            "name": [{"family": "Everywoman", "given": ["Eve"]}], "gender": "female",
            "birthDate": "1970-03-01", **more}


def potassium(subject: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3",
                                 "display": "Potassium [Moles/volume] in Serum or Plasma"}]},
            "subject": {"reference": subject},
            "valueQuantity": {"value": 4.1, "unit": "mmol/L",
                              "system": "http://unitsofmeasure.org", "code": "mmol/L"}}


def transaction(*resources: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": full_url, "resource": resource,
         "request": {"method": "POST", "url": resource["resourceType"]}}
        for full_url, resource in resources]}


def message(*entries: dict[str, Any]) -> dict[str, Any]:
    header = {"resourceType": "MessageHeader", "id": "adt-a01-0001",
              "eventCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0003",
                              "code": "A01"},
              "source": {"endpoint": "urn:switchboard:ehr-adt-feed"},
              "focus": [{"reference": PATIENT_URN}]}
    return {"resourceType": "Bundle", "type": "message", "timestamp": "2024-05-01T10:00:00Z",
            "entry": [{"fullUrl": "urn:uuid:0f0e0d0c-0b0a-4909-8807-060504030201",
                       "resource": header}, *entries]}


INVALID = [
    pytest.param(patient(gender="x"), "code-invalid", ["Patient.gender"], id="gender-x"),
    pytest.param({"resourceType": "Observation", "subject": {"reference": "Patient/1"}},
                 "structure", ["Observation.status", "Observation.code"], id="no-status-code"),
    pytest.param(patient(birthDate="1970-02-30"), "structure", ["Patient.birthDate"],
                 id="no-such-day"),
    pytest.param(patient(colour="blue"), "structure", ["Patient.colour"], id="unknown-element"),
]


def test_a_transaction_is_stored_and_found_by_search(fhir_store):
    answer = fhir_store.ok("POST", "", transaction(
        (PATIENT_URN, patient()), (OBSERVATION_URN, potassium(PATIENT_URN))))

    assert answer["type"] == "transaction-response"
    assert [entry["response"]["status"] for entry in answer["entry"]] == ["201", "201"]
    [found] = fhir_store.search("Patient", identifier=f"{MRN}|12345")
    [observation] = fhir_store.search("Observation", subject=f"Patient/{found['id']}")
    assert observation["subject"] == {"reference": f"Patient/{found['id']}"}
    assert fhir_store.read("Patient", found["id"])["name"] == [
        {"family": "Everywoman", "given": ["Eve"]}]
    assert fhir_store.counts() == {"Observation": 1, "Patient": 1}


def test_a_transaction_with_one_invalid_entry_stores_nothing(fhir_store):
    refused = fhir_store.request("POST", "", transaction(
        (PATIENT_URN, patient()), (OBSERVATION_URN, {"resourceType": "Observation"})))

    assert refused.status == 400
    assert refused.body["resourceType"] == "OperationOutcome"
    assert fhir_store.counts() == {}


def test_conditional_update_twice_leaves_one_patient(fhir_store):
    path = f"Patient?identifier={MRN}|777"
    first = fhir_store.request("PUT", path, patient("777"))
    second = fhir_store.request("PUT", path, patient("777", active=True))

    assert (first.status, second.status) == (201, 200)
    assert second.body["id"] == first.body["id"]
    [stored] = fhir_store.search("Patient", identifier=f"{MRN}|777")
    assert stored["active"] is True
    assert fhir_store.count("Patient") == 1
    assert fhir_store.counts() == {"Patient": 1}


def test_each_test_starts_with_an_empty_store(fhir_store):
    assert fhir_store.counts() == {}
    fhir_store.ok("POST", "Patient", patient())
    assert fhir_store.counts() == {"Patient": 1}


@pytest.mark.parametrize(("resource", "code", "where"), INVALID)
def test_the_server_refuses_an_invalid_resource(fhir_store, resource, code, where):
    refused = fhir_store.request("POST", resource["resourceType"], resource)

    assert refused.status == 400
    assert refused.body["resourceType"] == "OperationOutcome"
    assert {issue["code"] for issue in refused.body["issue"]} == {code}
    assert [issue["expression"] for issue in refused.body["issue"]] == [[each] for each in where]
    assert fhir_store.counts() == {}


@pytest.mark.parametrize(("resource", "code", "where"), INVALID)
def test_the_validator_finds_an_invalid_resource(fhir_validator, resource, code, where):
    issues = fhir_validator.validate(resource)

    assert {(issue["severity"], issue["code"]) for issue in issues} == {("error", code)}
    assert [issue["expression"] for issue in issues] == [[each] for each in where]
    assert all(issue["details"] for issue in issues)


def test_the_validator_finds_an_invalid_entry_where_it_is(fhir_validator):
    bundle = transaction((PATIENT_URN, patient(gender="x")),
                         (OBSERVATION_URN, {"resourceType": "Nonsense"}))

    assert [(issue["code"], issue["expression"]) for issue in fhir_validator.validate(bundle)] == [
        ("structure", ["Bundle.entry[1].resource.resourceType"]),
        ("code-invalid", ["Bundle.entry[0].resource.gender"]),
    ]


@pytest.mark.parametrize("doc", [
    pytest.param(patient(), id="patient"),
    pytest.param(potassium("Patient/1"), id="observation"),
    pytest.param(transaction((PATIENT_URN, patient()), (OBSERVATION_URN, potassium(PATIENT_URN))),
                 id="transaction"),
    pytest.param(message({"fullUrl": PATIENT_URN, "resource": patient()}), id="message"),
    pytest.param(json.dumps(patient(), indent=2), id="json-text-over-lines"),
])
def test_the_validator_passes_valid_r4(fhir_validator, doc):
    assert fhir_validator.validate(doc) == []


@pytest.mark.parametrize(("doc", "details"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ({"resourceType": "Nonsense"}, "Invalid resource type"),
])
def test_the_validator_answers_what_is_no_resource(fhir_validator, doc, details):
    [issue] = fhir_validator.validate(doc)
    assert details in issue["details"]


def test_process_message_applies_the_entries_after_its_header(fhir_store, fhir_validator):
    encounter = {"resourceType": "Encounter", "status": "in-progress",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                           "code": "IMP"},
                 "subject": {"reference": PATIENT_URN}}
    answer = fhir_store.ok("POST", "$process-message", message(
        {"fullUrl": PATIENT_URN, "resource": patient()},
        {"fullUrl": "urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "resource": encounter}))

    [stored_patient] = fhir_store.search("Patient", identifier=f"{MRN}|12345")
    [stored_encounter] = fhir_store.search("Encounter")
    assert stored_encounter["subject"] == {"reference": f"Patient/{stored_patient['id']}"}
    assert fhir_store.counts() == {"Encounter": 1, "Patient": 1}
    header = answer["entry"][0]["resource"]
    assert (answer["type"], header["response"]) == (
        "message", {"identifier": "adt-a01-0001", "code": "ok"})
    assert fhir_validator.validate(answer) == []


@pytest.mark.parametrize(("bundle", "details"), [
    pytest.param(transaction((PATIENT_URN, patient())), "takes a Bundle of type message",
                 id="not-a-message"),
    pytest.param({"resourceType": "Bundle", "type": "message",
                  "entry": [{"fullUrl": PATIENT_URN, "resource": patient()}]},
                 "first entry of a message must be its MessageHeader", id="no-header-first"),
    pytest.param(message({"fullUrl": PATIENT_URN, "resource": patient(gender="x")}),
                 "administrative-gender", id="invalid-entry"),
])
def test_process_message_refuses_what_is_no_valid_message(fhir_store, bundle, details):
    refused = fhir_store.request("POST", "$process-message", bundle)

    assert refused.status == 400
    assert details in refused.body["issue"][0]["details"]["text"]
    assert fhir_store.counts() == {}


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "Patient/no-such-id", 404),
    ("GET", "Nonsense?name=x", 404),
])
def test_errors_come_back_as_operation_outcomes(fhir_server, method, path, status):
    answer = fhir_server.request(method, path)
    assert (answer.status, answer.body["resourceType"]) == (status, "OperationOutcome")


def test_missing_packages_fail_loudly_with_what_to_run(tmp_path):
    shutil.copy(FOLDER / "package.json", tmp_path / "package.json")
    with pytest.raises(FhirServerUnavailable, match="scripts/fhir-server-setup"):
        node(tmp_path)
