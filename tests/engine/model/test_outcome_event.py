"""The task outcome event, pure: the document the journal keeps (read back exactly,
refused without quoting when it is not one) and its canonical record, a documented
shape: the originating message's record under the event's own envelope and a
``task_outcome`` section, valid against the canonical schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.hl7v2 import parse
from engine.model.canonical import canonical_errors, canonical_paths
from engine.model.outcome_event import (
    TASK_OUTCOME,
    Origin,
    OutcomeEvent,
    OutcomeEventError,
    event_record,
)
from tests.engine.fhir.corpus import body, mapper
from tests.engine.fhir.corpus import sample as fhir_sample
from tests.samples import read

DECIDED = datetime(2026, 11, 24, 9, 30, 15, 250000, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
REFERRAL = read("fhir-converter/REF-I12-01.hl7")


def outcome(origin: Origin | None = None, **changes) -> OutcomeEvent:
    values = {"task_id": 7, "queue": "referral-intake", "kind": "referral-triage",
              "mode": "notify", "row_id": "referral-intake", "outcome": "completed",
              "decided_at": DECIDED, "state": "scheduled", "reason": "booked",
              "decided_by_role": "clinician", "origin": origin, **changes}
    return OutcomeEvent(**values)


def hl7_origin(raw: bytes = REFERRAL) -> Origin:
    return Origin("m-1", "partner-referrals", "hl7v2", RECEIVED, raw)


def charsets(_source: str) -> str | None:
    return None


def test_the_record_is_the_origins_under_the_events_envelope():
    origin_record = mapper().convert(parse(REFERRAL)).record
    record = event_record(origin_record, outcome(hl7_origin()))
    assert canonical_errors(record) == []
    assert record["message"] == {"source_format": TASK_OUTCOME, "type": "TASK",
                                 "event": "completed", "control_id": "task-7",
                                 "sent_at": "2026-11-24T09:30:15.250000+00:00"}
    assert record["task_outcome"] == {
        "task_id": 7, "queue": "referral-intake", "kind": "referral-triage",
        "mode": "notify", "row_id": "referral-intake", "outcome": "completed",
        "state": "scheduled", "reason": "booked", "decided_by_role": "clinician",
        "decided_at": "2026-11-24T09:30:15.250000+00:00",
        "origin": {"message_id": "m-1", "source_format": "hl7v2", "type": "REF",
                   "event": "I12", "control_id": "MSG00112", "sending_application": "GHH",
                   "sending_facility": "GHHSFacility"}}
    for section in ("patient", "encounter", "orders", "referrals"):
        assert record[section] == origin_record[section]
    assert origin_record["message"]["type"] == "REF"  # the origin's record is not changed


def test_every_field_of_the_section_is_a_canonical_path():
    paths = canonical_paths()
    for name in ("task_id", "queue", "kind", "mode", "row_id", "outcome", "state", "reason",
                 "decided_by_role", "decided_at", "origin"):
        assert ("task_outcome", name) in paths
    assert ("task_outcome", "origin", "message_id") in paths


def test_an_event_for_no_message_is_a_record_with_nothing_else():
    record = outcome(None, state=None, reason=None).conversion(mapper(), charsets)[0].record
    assert canonical_errors(record) == []
    assert record["patient"] == {} and record["referrals"] == []
    assert "origin" not in record["task_outcome"]
    assert "state" not in record["task_outcome"]


def test_the_origin_is_converted_by_the_rules_that_route_the_event():
    event = outcome(hl7_origin())
    conversion, message = event.conversion(mapper(), charsets)
    assert message is not None and message.get("MSH-10") == "MSG00112"
    expected = mapper().convert(parse(REFERRAL))
    assert conversion.record == event_record(expected.record, event)
    assert conversion.issues == expected.issues


def test_a_fhir_origin_is_read_as_fhir():
    origin = Origin("m-2", "portal-fhir", "fhir-r4", RECEIVED, body(fhir_sample("patient.json")))
    conversion, message = outcome(origin).conversion(mapper(), charsets)
    assert message is None
    assert conversion.record["patient"]["identifiers"]
    assert conversion.record["task_outcome"]["origin"]["source_format"] == "fhir-r4"
    assert canonical_errors(conversion.record) == []


def test_the_journal_document_reads_back_exactly():
    for event in (outcome(hl7_origin()), outcome(None, state=None, reason=None,
                                                 decided_by_role=None, row_id=None)):
        assert OutcomeEvent.read(event.to_bytes()) == event


@pytest.mark.parametrize("raw", [b"", b"PATID1234 not json", b"[1, 2]",
                                 b'{"task_id": "PATID1234"}'])
def test_what_is_not_an_event_is_refused_without_quoting_it(raw):
    with pytest.raises(OutcomeEventError) as caught:
        OutcomeEvent.read(raw)
    assert "PATID1234" not in str(caught.value)
