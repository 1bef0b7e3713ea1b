"""A task outcome event's record becomes a FHIR R4 Task in a transaction Bundle: the
state of the referral (or orders) the task was about, named by their identifiers and
the patient's, creating nothing else in the system of record; valid with the R4B
models and holding nothing the destination's scope leaves out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.task import Task
from hypothesis import given
from hypothesis import strategies as st

from engine.fhir import encode_bundle
from engine.model.canonical import canonical_paths
from engine.model.canonical_path import format_canonical_path
from engine.model.outcome_event import Origin, OutcomeEvent, event_record
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import convert
from tests.engine.fhir.test_bundle import leaks
from tests.samples import CORPUS

DECIDED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
REFERRAL = convert(CORPUS / "fhir-converter/REF-I12-01.hl7")
ORDER = convert(CORPUS / "fhir-converter/ORM-O01-01.hl7")
# What a referral's write-back needs: who, which referral, how it ended.
WRITE_BACK = ["patient.identifiers", "referrals[*].id", "referrals[*].external_id",
              "task_outcome.outcome", "task_outcome.state", "task_outcome.decided_at"]
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"


def outcome_record(origin=REFERRAL, outcome="completed", state="scheduled",
                   reason="booked for 3 Dec") -> dict:
    event = OutcomeEvent(7, "referral-intake", "referral-triage", "notify", "referral-intake",
                         outcome, DECIDED, state, reason, "clinician",
                         Origin("m-1", "partner-referrals", "hl7v2", DECIDED, b""))
    return event_record(origin, event)


def write_back(record: dict, scope=WRITE_BACK) -> dict:
    bundle = encode_bundle(compile_scope(scope).project(record), "event-1")
    Bundle.model_validate(bundle)
    return bundle


def only_task(bundle: dict) -> dict:
    (entry,) = bundle["entry"]
    Task.model_validate(entry["resource"])
    return entry


def typed(code: str, value: str) -> dict:
    return {"type": "ServiceRequest", "identifier": {
        "type": {"coding": [{"system": IDENTIFIER_TYPE, "code": code}]}, "value": value}}


def test_a_referrals_state_is_written_back_as_a_task_on_the_referral():
    entry = only_task(write_back(outcome_record()))
    task = entry["resource"]
    assert (task["status"], task["businessStatus"], task["intent"]) == (
        "in-progress", {"text": "scheduled"}, "order")
    # The referral by its originating (placer) and external (filler) numbers.
    assert task["basedOn"] == [typed("PLAC", "226839"), typed("FILL", "11001")]
    assert task["focus"] == typed("PLAC", "226839")
    assert task["for"] == {"type": "Patient", "identifier": {
        "value": "PATID1234", "assigner": {"display": "ADT1"}, "type": {
            "text": "GOOD HEALTH HOSPITAL"}}}
    assert task["lastModified"] == "2026-11-24T09:30:00+00:00"
    # Posted once: a retry finds the Task by its identifier, the same for one event.
    (identifier,) = task["identifier"]
    assert entry["request"] == {"method": "POST", "url": "Task",
                                "ifNoneExist": f"identifier=urn:ietf:rfc:3986|"
                                               f"{identifier['value']}"}
    assert write_back(outcome_record())["entry"][0]["resource"] == task
    # Nothing else is written: no Patient, no ServiceRequest, no words about the patient.
    assert "statusReason" not in task and "EVERYMAN" not in str(task)


@pytest.mark.parametrize("outcome, state, status", [
    ("completed", "accepted", "accepted"),
    ("completed", "declined", "rejected"),
    ("completed", "scheduled", "in-progress"),
    ("completed", "cancelled", "cancelled"),
    ("completed", None, "completed"),
    ("completed", "waitlisted", "completed"),
    ("approved", None, "accepted"),
    ("rejected", None, "rejected"),
])
def test_the_tasks_status_says_how_it_ended(outcome, state, status):
    task = only_task(write_back(outcome_record(outcome=outcome, state=state)))["resource"]
    assert task["status"] == status
    assert task["businessStatus"] == {"text": state or outcome}


def test_the_reason_goes_only_where_the_scope_allows_it():
    task = only_task(write_back(outcome_record(), [*WRITE_BACK, "task_outcome.reason"]))
    assert task["resource"]["statusReason"] == {"text": "booked for 3 Dec"}


def test_orders_are_named_by_their_placer_and_filler_numbers():
    record = outcome_record(ORDER, "approved", None)
    task = only_task(write_back(record, ["orders", "task_outcome"]))["resource"]
    order = ORDER["orders"][0]
    assert task["basedOn"][:2] == [typed("PLAC", order["placer_id"]),
                                   typed("FILL", order["filler_id"])]
    assert "for" not in task


def test_a_scope_without_the_outcome_keeps_the_task_valid():
    task = only_task(write_back(outcome_record(), ["referrals[*].id", "task_outcome.task_id"]))
    assert task["resource"]["_status"]["extension"][0]["valueCode"] == "unknown"


PATHS = sorted(format_canonical_path(steps) for steps in canonical_paths())
RECORDS = [outcome_record(), outcome_record(ORDER, "rejected", None, "wrong patient")]


@given(st.sampled_from(RECORDS), st.lists(st.sampled_from(PATHS), max_size=8))
def test_any_scope_of_an_outcome_gives_a_valid_bundle_holding_nothing_outside_it(
        record, scope):
    projected = compile_scope([*scope, "task_outcome.task_id"]).project(record)
    bundle = write_back(projected, PATHS)
    assert [entry["resource"]["resourceType"] for entry in bundle["entry"]] == ["Task"]
    assert leaks(record, projected, bundle) == []
