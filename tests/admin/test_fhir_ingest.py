"""FHIR in over real HTTP on 127.0.0.1 (the portal-fhir connection), on SQLite and
PostgreSQL: every resource type Switchboard's Bundles carry is taken alone or in a
batch, transaction or message Bundle and normalised; a resource seen again is a
duplicate, a changed or newer one an update, an older one stale, whatever its type;
bad input is journaled as rejected and answered with an OperationOutcome (415 for a
media type the connection does not take, 400 for JSON that does not parse, 422 for an
unknown or invalid resource)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from admin.ingest_outcome import MESSAGE_ID_EXTENSION
from engine.fhir.bundle import encode_bundle
from engine.pipeline import Pipeline
from tests.admin.test_web import PORTAL_TOKEN, Web, web  # noqa: F401
from tests.engine.fhir.corpus import convert
from tests.samples import CORPUS

SECRET = "SECRET-4417"  # stands for PHI: never in an answer or the exception queue
SUBJECT = {"identifier": {"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-7731"}}
CODE = {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]}

# One resource of each type the encoder makes beyond the first seven, as a sender
# would post it alone: filed under its Type/id.
RESOURCES: dict[str, dict[str, Any]] = {
    "Condition": {"subject": SUBJECT, "code": CODE, "onsetDateTime": "2026-11-01"},
    "AllergyIntolerance": {"patient": SUBJECT, "code": CODE, "criticality": "low"},
    "Procedure": {"status": "completed", "subject": SUBJECT, "code": CODE},
    "Immunization": {"status": "completed", "patient": SUBJECT,
                     "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx",
                                                 "code": "08"}]},
                     "occurrenceDateTime": "2026-11-02"},
    "MedicationRequest": {"status": "active", "intent": "original-order", "subject": SUBJECT,
                          "medicationCodeableConcept": CODE, "authoredOn": "2026-11-03"},
    "MedicationDispense": {"status": "completed", "subject": SUBJECT,
                           "medicationCodeableConcept": CODE},
    "Specimen": {"subject": SUBJECT, "type": CODE, "receivedTime": "2026-11-04T08:00:00Z"},
    "Coverage": {"status": "active", "beneficiary": SUBJECT,
                 "payor": [{"display": "Riverside Health Plan"}]},
    "RelatedPerson": {"patient": SUBJECT, "name": [{"family": "Quintero", "given": ["Ana"]}]},
    "Account": {"status": "active", "subject": [SUBJECT],
                "identifier": [{"value": "ACC-1"}]},
    "EpisodeOfCare": {"status": "active", "patient": SUBJECT,
                      "identifier": [{"value": "EP-1"}]},
    "PractitionerRole": {"practitioner": {"identifier": {"value": "1134"}}, "code": [CODE]},
    "Encounter": {"status": "in-progress", "subject": SUBJECT,
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "IMP"}},
}


def resource(resource_type: str, version: str | None = None, **changes: Any) -> dict[str, Any]:
    document = {"resourceType": resource_type, "id": f"{resource_type.lower()}-1",
                **copy.deepcopy(RESOURCES[resource_type]), **changes}
    if version is not None:
        document["meta"] = {"versionId": version}
    return document


def post(site: Web, document: Any, content_type: str = "application/fhir+json",
         raw: bytes | None = None) -> tuple[int, dict, dict]:
    return site.call("POST", "/ingest/portal-fhir", token=PORTAL_TOKEN,
                    body=raw if raw is not None else json.dumps(document).encode(),
                    content_type=content_type)


def test_every_type_is_received_duplicated_updated_and_flagged_stale(web, engine):  # noqa: F811
    answers, received = {}, []
    for resource_type in RESOURCES:
        first = post(web, resource(resource_type, "1"))[2]
        again = post(web, resource(resource_type, "1"))[2]
        changed = post(web, resource(resource_type, "2", text={
            "status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">2</div>'}))[2]
        older = post(web, resource(resource_type, "1", language="en"))[2]
        answers[resource_type] = (
            first["status"], again["status"], again["original_message_id"] == first[
                "message_id"], changed["status"], changed.get("previous_message_id") == first[
                "message_id"], older["status"])
        received += [first["message_id"], changed["message_id"]]
    assert answers == {resource_type: ("received", "duplicate", True, "update", True, "stale")
                       for resource_type in RESOURCES}
    Pipeline(engine).run_once()
    statuses = {web.call("GET", f"/api/messages/{message_id}", as_user="olive")[2]["status"]
                for message_id in received}
    assert statuses == {"routed"}  # each normalised to a record the routes take


@pytest.mark.parametrize("bundle_type", ["transaction", "batch", "message"])
def test_a_bundle_of_every_section_is_normalised_and_a_resend_is_a_duplicate(
        web, engine, bundle_type):  # noqa: F811
    record = convert(CORPUS / "fhir-converter/ADT-A01-01.hl7")
    bundle = encode_bundle(record, f"ingest-{bundle_type}")
    bundle["type"] = bundle_type
    if bundle_type == "message":
        # A message Bundle starts with its MessageHeader; its entries have no request.
        entries = bundle["entry"]
        header = [e for e in entries if e["resource"]["resourceType"] == "MessageHeader"]
        bundle["entry"] = header + [e for e in entries if e not in header]
        bundle["timestamp"] = "2026-12-07T08:30:00+00:00"
        for entry in bundle["entry"]:
            entry.pop("request")
    first = post(web, bundle)
    assert (first[0], first[2]["status"]) == (202, "received")
    again = post(web, bundle)
    assert (again[0], again[2]["status"]) == (202, "duplicate")
    assert Pipeline(engine).run_once() == 1
    detail = web.call("GET", f"/api/messages/{first[2]['message_id']}", as_user="olive")[2]
    assert detail["status"] == "routed"


BAD_INPUT = {
    # case: (body, content type, status, issue type)
    "a media type the connection does not take": (
        b'{"resourceType": "Patient", "id": "SECRET-4417"}', "text/plain", 415, "not-supported"),
    "FHIR XML": (b"<Patient><id value='SECRET-4417'/></Patient>", "application/fhir+xml",
                 415, "not-supported"),
    "JSON that does not parse": (b'{"resourceType": "Patient", "id": "SECRET-4417"',
                                 "application/fhir+json", 400, "structure"),
    "NaN, which JSON has not": (b'{"resourceType": "Observation", "valueQuantity": '
                                b'{"value": NaN}}', "application/fhir+json", 400, "structure"),
    "a resource type Switchboard does not read": (
        b'{"resourceType": "Questionnaire", "id": "SECRET-4417"}', "application/fhir+json",
        422, "not-supported"),
    "a resource type FHIR does not define": (
        b'{"resourceType": "SECRET-4417"}', "application/fhir+json", 422, "not-supported"),
    "an unknown type inside a Bundle": (
        json.dumps({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Questionnaire", "id": SECRET}}]}).encode(),
        "application/fhir+json", 422, "not-supported"),
    "JSON that is no resource": (b'{"id": "SECRET-4417"}', "application/fhir+json", 422,
                                 "invalid"),
    "an invalid Condition": (
        json.dumps({"resourceType": "Condition", "subject": SUBJECT,
                    "onsetDateTime": f"yesterday {SECRET}"}).encode(),
        "application/fhir+json", 422, "invalid"),
    "an invalid Immunization in a message Bundle": (
        json.dumps({"resourceType": "Bundle", "type": "message", "entry": [
            {"resource": {"resourceType": "Immunization", "status": SECRET}}]}).encode(),
        "application/fhir+json", 422, "invalid"),
}


def test_bad_input_is_journaled_as_rejected_and_answered_with_an_operation_outcome(
        web):  # noqa: F811
    answers, outcomes = {}, []
    for case, (body, content_type, _, _) in BAD_INPUT.items():
        status, headers, outcome = post(web, None, content_type, raw=body)
        message_id = next((e["valueString"] for e in outcome.get("extension", ())
                           if e["url"] == MESSAGE_ID_EXTENSION), None)
        journaled = web.call("GET", f"/api/messages/{message_id}", as_user="olive")[2]
        answers[case] = (status, headers.get("Content-Type"),
                         [issue["code"] for issue in outcome.get("issue", ())],
                         journaled.get("status"))
        outcomes.append(outcome)
    assert answers == {case: (status, "application/fhir+json", [issue], "rejected")
                       for case, (_, _, status, issue) in BAD_INPUT.items()}
    for outcome in outcomes:
        OperationOutcome.model_validate(outcome)  # a valid R4 OperationOutcome
        assert outcome["issue"][0]["diagnostics"] and outcome["issue"][0]["severity"] == "error"
    exceptions = web.call("GET", "/api/exceptions?per_page=100", as_user="olive")[2]
    assert exceptions["total"] == len(BAD_INPUT)
    assert SECRET not in json.dumps(outcomes) + json.dumps(exceptions)


def test_an_invalid_resource_names_the_element_without_quoting_it(web):  # noqa: F811
    status, _, outcome = post(web, {"resourceType": "Condition", "subject": SUBJECT,
                                    "onsetDateTime": f"yesterday {SECRET}"})
    assert status == 422
    issue = outcome["issue"][0]
    assert issue["expression"] == ["Condition.onsetDateTime"]
    assert "invalid FHIR R4 Condition" in issue["diagnostics"] and issue["details"]["text"]
