"""The impact of a draft on one message, against the shipped configuration as the
published version: each kind of rule change is reported exactly, by row, destination,
path and error class, never by value; identical versions report nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from engine.fhir import read_fhir, to_canonical
from engine.hl7v2 import parse
from engine.impact_preview import replayable
from engine.journal import now_utc
from engine.model.mapping import Conversion
from engine.model.outcome_event import Origin, OutcomeEvent
from engine.rules.impact import (
    NO_ROUTE,
    Changes,
    MessageImpact,
    Unreadable,
    compare,
    path_changes,
    rule_test_messages,
    same_mapping,
    summarise,
)
from engine.rules.rule_set import RuleSet, compile_rule_set
from engine.rules.snapshot import from_content, to_content
from engine.rules.source import read_rule_source
from tests.samples import read

ROOT = Path(__file__).resolve().parents[3]
ADMISSION = "fhir-converter/ADT-A01-01.hl7"  # lab-system, bed-board, analytics-warehouse
VACCINATION = "fhir-converter/VXU-V04-01.hl7"  # analytics-warehouse only
Edit = Callable[[dict[str, Any]], None]


@cache
def shipped_content() -> str:
    return json.dumps(to_content(read_rule_source(ROOT)))


@cache
def published() -> RuleSet:
    return compile_rule_set(from_content(json.loads(shipped_content())))


def draft(edit: Edit) -> RuleSet:
    content = json.loads(shipped_content())
    edit({doc["path"]: doc["data"] for doc in content["documents"]})
    return compile_rule_set(from_content(content))


def route_row(docs: dict[str, Any], table: str, row_id: str) -> dict[str, Any]:
    rows = docs[f"rules/routes/{table}.yaml"]["rows"]
    return next(row for row in rows if row["id"] == row_id)


def add_clinic_north(docs: dict[str, Any]) -> None:
    route_row(docs, "registration", "registration-demographics-to-lab")["to"].append(
        "clinic-north")


def move_bed_board_to_lab(docs: dict[str, Any]) -> None:
    route_row(docs, "registration", "patient-flow-to-bed-board")["to"] = ["lab-system"]


def gender_always_unknown(docs: dict[str, Any]) -> None:
    docs["rules/mappings/patient.yaml"]["fields"]["patient.gender"] = {"value": "unknown"}


def lab_without_birth_date(docs: dict[str, Any]) -> None:
    docs["catalog/connections/lab-system.yaml"]["data_scope"].remove("patient.birth_date")


def bed_board_held_for_review(docs: dict[str, Any]) -> None:
    route_row(docs, "registration", "patient-flow-to-bed-board")["checkpoint"] = {
        "mode": "hold", "queue": "nurse-review", "kind": "bed-check"}


def gender_not_in_the_model(docs: dict[str, Any]) -> None:
    docs["rules/mappings/patient.yaml"]["fields"]["patient.gender"] = {
        "value": "not-a-gender"}


def gender_from_a_relative_path(docs: dict[str, Any]) -> None:
    # Compiles, but a relative path names no field outside an ``each``: every message
    # with a PID fails when converted.
    docs["rules/mappings/patient.yaml"]["fields"]["patient.gender"] = ".1"


def no_analytics(docs: dict[str, Any]) -> None:
    docs["rules/routes/analytics.yaml"]["rows"] = [{
        "id": "all-events-to-analytics", "match": {"type": "NONE"},
        "to": ["analytics-warehouse"]}]


def lab_without_header(docs: dict[str, Any]) -> None:
    docs["catalog/connections/lab-system.yaml"]["data_scope"].remove("message")


CASES = [
    pytest.param(add_clinic_north, ADMISSION, {
        "routes": {"added": ["registration/registration-demographics-to-lab → clinic-north"]},
        "destinations": {"added": ["clinic-north"]},
    }, id="adds-a-destination"),
    pytest.param(move_bed_board_to_lab, ADMISSION, {
        "routes": {"added": ["registration/patient-flow-to-bed-board → lab-system"],
                   "removed": ["registration/patient-flow-to-bed-board → bed-board"]},
        # lab-system had a route already: only the bed board is lost.
        "destinations": {"removed": ["bed-board"]},
    }, id="removes-a-destination"),
    pytest.param(gender_always_unknown, ADMISSION, {
        "canonical": {"changed": ["patient.gender"]},
        "payloads": {dest: {"changed": ["patient.gender"]}
                     for dest in ("analytics-warehouse", "bed-board", "lab-system")},
    }, id="mapping-changes-a-canonical-field"),
    pytest.param(lab_without_birth_date, ADMISSION, {
        "payloads": {"lab-system": {"removed": ["patient.birth_date"]}},
    }, id="narrower-data-scope"),
    pytest.param(bed_board_held_for_review, ADMISSION, {
        "held": {"added": ["bed-board"]},
        "tasks": {"added": ["patient-flow-to-bed-board: nurse-review/bed-check (hold)"]},
    }, id="adds-a-hold-checkpoint"),
    pytest.param(gender_not_in_the_model, ADMISSION, {
        "canonical": {"changed": ["patient.gender"]},
        "payloads": {dest: {"changed": ["patient.gender"]}
                     for dest in ("analytics-warehouse", "bed-board", "lab-system")},
        # Named by location only: the schema's own wording quotes the value.
        "exceptions": {"added": ["canonical record invalid at patient.gender"]},
    }, id="mapping-breaks-the-canonical-model"),
    pytest.param(no_analytics, VACCINATION, {
        "routes": {"removed": ["analytics/all-events-to-analytics → analytics-warehouse"]},
        "destinations": {"removed": ["analytics-warehouse"]},
        "exceptions": {"added": [NO_ROUTE]},
    }, id="message-goes-nowhere"),
    pytest.param(gender_from_a_relative_path, ADMISSION, {
        "routes": {"removed": [
            "analytics/all-events-to-analytics → analytics-warehouse",
            "registration/patient-flow-to-bed-board → bed-board",
            "registration/registration-demographics-to-lab → lab-system"]},
        "destinations": {"removed": ["analytics-warehouse", "bed-board", "lab-system"]},
        "exceptions": {"added": ["cannot be processed (PathError)"]},
    }, id="message-cannot-be-processed"),
    pytest.param(lab_without_header, ADMISSION, {
        "payloads": {"lab-system": {"removed": [
            "message.control_id", "message.event", "message.event_facility",
            "message.event_facility_id", "message.event_occurred_at", "message.event_reason",
            "message.operator.family", "message.operator.given", "message.operator.id",
            "message.operator.prefix", "message.operator.suffix", "message.processing_id",
            "message.receiving_application", "message.receiving_application_id",
            "message.receiving_facility", "message.receiving_facility_id",
            "message.recorded_at", "message.security", "message.sending_application",
            "message.sending_facility", "message.sending_facility_id", "message.sent_at",
            "message.software.product", "message.software.vendor", "message.software.version",
            "message.source_format", "message.structure", "message.type", "message.version"]}},
        "exceptions": {"added": ["cannot encode for lab-system (EncodeError)"]},
    }, id="payload-cannot-be-encoded"),
]


@pytest.mark.parametrize(("edit", "sample", "expected"), CASES)
def test_a_draft_reports_exactly_what_it_changes(edit, sample, expected):
    impact = compare(published(), draft(edit), parse(read(sample)))
    assert impact.as_dict() == expected
    assert impact.changed
    json.dumps(impact.as_dict())  # JSON-able as it is


@pytest.mark.parametrize(("edit", "sample", "expected"), CASES)
def test_one_conversion_serves_both_when_the_mapping_is_the_same(edit, sample, expected):
    shipped = from_content(json.loads(shipped_content()))
    edited = json.loads(shipped_content())
    edit({doc["path"]: doc["data"] for doc in edited["documents"]})
    same = same_mapping(shipped, from_content(edited))
    assert same == (edit not in (gender_always_unknown, gender_not_in_the_model,
                                 gender_from_a_relative_path))
    impact = compare(published(), draft(edit), parse(read(sample)), same_mapping=same)
    assert impact.as_dict() == expected


def mirrored(report: dict[str, Any]) -> dict[str, Any]:
    swap = {"added": "removed", "removed": "added", "changed": "changed"}

    def mirror(changes: dict[str, list[str]]) -> dict[str, list[str]]:
        return {swap[kind]: names for kind, names in changes.items()}

    return {kind: ({dest: mirror(c) for dest, c in value.items()} if kind == "payloads"
                   else mirror(value)) for kind, value in report.items()}


@pytest.mark.parametrize(("edit", "sample", "expected"), CASES)
def test_going_back_reports_the_mirror_image(edit, sample, expected):
    """Publishing the draft, then previewing the old version: exceptions go away."""
    impact = compare(draft(edit), published(), parse(read(sample)))
    assert impact.as_dict() == mirrored(expected)


@pytest.mark.parametrize("sample", [ADMISSION, VACCINATION, "fhir-converter/ORU-R01-RMGEAD.hl7",
                                    "fhir-converter/ADT-A03-01.hl7"])
def test_identical_versions_differ_in_nothing(sample):
    same = draft(lambda docs: None)
    impact = compare(published(), same, parse(read(sample)))
    assert (impact.changed, impact.as_dict()) == (False, {})
    assert impact.before == impact.after != ()


def test_the_report_holds_no_value_from_the_message():
    message = parse(read(ADMISSION))
    values = [message.get("PID-3.1"), message.get("PID-5.1"), "not-a-gender"]
    impact = compare(published(), draft(gender_not_in_the_model), message)
    text = json.dumps(impact.as_dict())
    assert all(value and value not in text for value in values)


def test_an_unreadable_message_is_the_same_exception_under_both():
    impact = compare(published(), draft(add_clinic_north), Unreadable("ParseError"))
    assert (impact.changed, impact.unreadable, impact.as_dict()) == (False, True, {})


def test_a_fhir_record_is_routed_by_both_versions():
    body = (ROOT / "tests/engine/fhir/samples/lab-report-bundle.json").read_bytes()
    record = to_canonical(read_fhir(body), received_at=now_utc())
    impact = compare(published(), draft(no_analytics),
                     Conversion(record, (), True, ("fhir-r4",)))
    assert (impact.before, impact.after) == (("analytics-warehouse",), ())
    assert impact.as_dict() == {
        "routes": {"removed": ["analytics/all-events-to-analytics → analytics-warehouse"]},
        "destinations": {"removed": ["analytics-warehouse"]},
        "exceptions": {"added": [NO_ROUTE]},
    }


@pytest.mark.parametrize(("before", "after", "expected"), [
    ({"a": 1}, {"a": 1}, Changes()),
    ({"a": {"b": 1}}, {"a": {"b": 2}}, Changes(changed=("a.b",))),
    ({"a": {}}, {"a": {"b": 1}}, Changes(added=("a.b",))),  # an empty object is absent
    ({"r": [{"c": 1}, {"c": 2}]}, {"r": [{"c": 1}, {"c": 3}, {"c": 4}]},
     Changes(added=("r[*].c",), changed=("r[*].c",))),
    ({"r": [[1, 2]]}, {"r": [[1]]}, Changes(removed=("r[*][*]",))),
    ({"a": None}, {}, Changes(removed=("a",))),
])
def test_path_changes_are_generalised_leaf_paths(before, after, expected):
    assert path_changes(before, after) == expected


def test_summary_counts_per_destination_and_totals():
    message = parse(read(ADMISSION))
    impacts = [
        compare(published(), draft(move_bed_board_to_lab), message),
        compare(published(), draft(gender_not_in_the_model), message),
        compare(published(), draft(no_analytics), parse(read(VACCINATION))),
        MessageImpact(("analytics-warehouse",), ("analytics-warehouse",)),
        compare(published(), published(), Unreadable("ParseError")),
    ]
    assert summarise(impacts) == {
        "messages": 5, "changed": 3, "unchanged": 2, "unreadable": 1,
        "messages_with_new_exceptions": 2, "messages_with_exceptions_gone": 0,
        "new_exceptions": {"canonical record invalid at patient.gender": 1, NO_ROUTE: 1},
        "exceptions_gone": {},
        "destinations": {
            "analytics-warehouse": {"before": 4, "after": 3, "added": 0, "removed": 1,
                                    "payload_changed": 1},
            "bed-board": {"before": 2, "after": 1, "added": 0, "removed": 1,
                          "payload_changed": 1},
            "lab-system": {"before": 2, "after": 2, "added": 0, "removed": 0,
                           "payload_changed": 1},
        },
    }


def test_rule_test_messages_are_named_by_file_and_case():
    source = from_content(json.loads(shipped_content()))
    messages = rule_test_messages(source)
    cases = [(case["id"], doc.path) for doc in source.of_kind("tests")
             for case in doc.data["cases"]]
    assert [(m.case, m.file) for m in messages] == cases
    first = next(m for m in messages if m.case == "admission-reaches-lab-and-bed-board")
    assert first.file == "rules/tests/registration.yaml"
    assert first.raw == read(ADMISSION)
    inline = next(m for m in messages
                  if m.case == "registration-without-identifier-is-not-sent-to-lab")
    assert inline.raw.startswith(b"MSH|") and b"\rEVN|" in inline.raw and b"\n" not in inline.raw


def test_a_message_the_pipeline_fails_at_parse_is_unreadable_in_a_preview_too():
    """A journaled message with bytes its charset cannot decode is failed by the
    pipeline (issue 13): a preview replays it the same way, not as routable."""
    from engine.impact_preview import replayable

    raw = b"MSH|^~\\&|EHR|RIV|||20260101||ADT^A08|1|P|2.5.1\rPID|1||12||DO\xffE\r"
    assert replayable(raw, "hl7v2") == Unreadable("ParseError")


def referral_outcome() -> bytes:
    """A referral task's completion, as the journal keeps it."""
    moment = now_utc()
    origin = Origin("m-1", "partner-referrals", "hl7v2", moment,
                    read("fhir-converter/REF-I12-01.hl7"))
    return OutcomeEvent(3, "referral-intake", "referral-triage", "notify", "referral-intake",
                        "completed", moment, None, None, "clinician", origin).to_bytes()


def outcomes_to_the_referral_tool(docs: dict[str, Any]) -> None:
    docs["rules/routes/referrals.yaml"]["rows"].append(
        {"id": "outcomes-to-tool", "match": {"type": "TASK", "event": "completed"},
         "to": ["referral-tool"]})
    del docs["rules/mappings/referrals.yaml"]["fields"]["referrals"]["fields"]["priority"]


def test_a_task_outcome_is_replayed_with_its_origin_converted_by_each_version():
    item = replayable(referral_outcome(), "task-outcome")
    assert isinstance(item, OutcomeEvent)
    impact = compare(published(), draft(outcomes_to_the_referral_tool), item)
    assert not impact.unreadable
    assert impact.destinations.added == ("referral-tool",)
    assert "referrals[*].priority" in impact.canonical.removed
    # An outcome no row sends on is no failure, in a preview as in the pipeline.
    outreach = OutcomeEvent(4, "outreach", "delivery", "work", None, "completed", now_utc())
    impact = compare(published(), draft(no_analytics),
                     replayable(outreach.to_bytes(), "task-outcome"))
    assert (impact.before, impact.after) == (("analytics-warehouse",), ())
    assert not impact.exceptions
