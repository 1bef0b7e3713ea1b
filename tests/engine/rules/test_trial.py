"""A message tried against the shipped rules in the test panel's pure core: every route
row of the message's type with its verdict and what each leaf saw, group by group;
unreadable input as a result that says what is wrong and where; FHIR JSON as the
engine takes it; and the outcome saved as a rule test that then passes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from engine.journal import FHIR_R4
from engine.rules.field_sources import field_sources
from engine.rules.rule_set import compile_rule_set
from engine.rules.rule_tests import SAVED_TESTS, run_rule_tests, with_saved_case
from engine.rules.snapshot import from_content, to_content
from engine.rules.source import read_rule_source
from engine.rules.trial import HL7V2, expected_outcome, explain, try_message

ROOT = Path(__file__).resolve().parents[3]
POTASSIUM = "\n".join([
    "MSH|^~\\&|LIS|RIVERSIDE LAB|EHR|BLDG4|20261124101500-0500||ORU^R01^ORU_R01|K0001|P|2.5.1",
    "PID|1||MRN100^^^RIVERSIDE^MR||ROE^RICHARD||19700305|M",
    "OBR|1|P100|F100|2823-3^Potassium^LN",
    "OBX|1|NM|2823-3^Potassium^LN||6.9|mmol/L|3.5-5.1|HH|||F|||20261124095500-0500",
]) + "\n"
NORMAL = POTASSIUM.replace("|HH|", "|N|").replace("|BLDG4|", "|ELSEWHERE|")


@pytest.fixture(scope="module")
def source():
    return read_rule_source(ROOT)


@pytest.fixture(scope="module")
def rules(source):
    return compile_rule_set(source)


@pytest.fixture(scope="module")
def sources(source):
    return field_sources(doc.data for doc in source.of_kind("mapping"))


def rows_of(trial):
    return {row.id: row for row in trial.rows}


@pytest.mark.parametrize(("text", "fired", "quiet"), [
    (POTASSIUM, {"abnormal-results-held-for-nurse-review", "results-to-north-clinic",
                 "all-events-to-analytics"},
     {"normal-results-to-ehr", "results-to-south-clinic"}),
    (NORMAL, {"normal-results-to-ehr", "all-events-to-analytics"},
     {"abnormal-results-held-for-nurse-review", "results-to-north-clinic",
      "results-to-south-clinic"}),
])
def test_every_row_of_the_type_is_shown_fired_or_not(rules, text, fired, quiet):
    trial = try_message(rules, text)
    assert trial.problem is None and trial.format == HL7V2
    rows = rows_of(trial)
    assert {r for r, row in rows.items() if row.fired} == fired
    assert {r for r, row in rows.items() if not row.fired} == quiet
    # Rows for ADT and the rest are not the message's: counted, not shown.
    assert trial.skipped_rows == len(rules.routes.rows) - len(rows) > 0
    assert {row.id for row in trial.outcome.decision.rows} == fired


def test_the_abnormal_row_fires_on_the_flag_it_saw(rules):
    row = rows_of(try_message(rules, POTASSIUM))["abnormal-results-held-for-nurse-review"]
    leaf = row.condition
    assert (leaf.kind, leaf.held) == ("leaf", True)
    assert leaf.evidence.path == "results[*].abnormal_flags[*]"
    assert leaf.evidence.op == "in" and "HH" in leaf.evidence.expected
    assert leaf.evidence.seen == ("HH",)


def test_a_row_that_does_not_fire_says_which_leaf_failed_and_what_it_saw(rules):
    trial = try_message(rules, POTASSIUM)
    normal = rows_of(trial)["normal-results-to-ehr"].condition
    assert (normal.kind, normal.held) == ("not", False)
    assert normal.children[0].evidence.seen == ("HH",) and normal.children[0].held
    south = rows_of(trial)["results-to-south-clinic"].condition
    assert (south.kind, south.held) == ("any", False)
    facility, ordering = south.children
    assert facility.evidence.path == "message.receiving_facility"
    assert facility.evidence.seen == ("BLDG4",) and not facility.held
    assert ordering.evidence.seen == () and not ordering.held


def test_what_each_destination_and_task_would_get(rules):
    trial = try_message(rules, POTASSIUM)
    deliveries = {d.destination: d for d in trial.deliveries}
    assert set(deliveries) == {"ehr-fhir", "clinic-north", "analytics-warehouse"}
    assert deliveries["ehr-fhir"].held_by == "abnormal-results-held-for-nurse-review"
    assert [d.destination for d in trial.held] == ["ehr-fhir"]
    assert all(d.problem is None and d.body for d in trial.deliveries)
    assert '"resourceType":"Bundle"' in deliveries["ehr-fhir"].body.replace(" ", "")
    assert [(t.intent.queue, t.intent.mode) for t in trial.tasks] == [("nurse-review", "hold")]
    assert trial.record["results"][0]["abnormal_flags"] == ["HH"]
    # The tree names every position by its path.
    obx = next(node for node in trial.tree if str(node.path) == "OBX")
    assert "OBX-8" in {str(child.path) for child in obx.children}


def test_pasted_line_ends_read_as_segments(rules):
    crlf = try_message(rules, POTASSIUM.replace("\n", "\r\n").encode())
    lf = try_message(rules, POTASSIUM)
    assert crlf.raw == lf.raw == POTASSIUM.strip().replace("\n", "\r").encode()
    assert crlf.outcome.decision == lf.outcome.decision


@pytest.mark.parametrize(("text", "what", "where"), [
    ("hello, this is not a message", "must start with an MSH segment", "segment 1"),
    ("", "there is no message to try", ""),
    ("   \n\n", "there is no message to try", ""),
    ('{"resourceType": "Nonsense"}', "does not define", ""),
    ("{not json", "JSON", ""),
])
def test_unreadable_input_says_what_is_wrong_and_where(rules, text, what, where):
    trial = try_message(rules, text)
    assert trial.problem is not None and trial.outcome is None and trial.rows == ()
    assert what in trial.problem.what + trial.problem.hint
    assert trial.problem.where == where


def test_fhir_json_is_tried_as_the_engine_takes_it(rules):
    raw = (ROOT / "tests/engine/fhir/samples/observation.json").read_bytes()
    trial = try_message(rules, raw)
    assert trial.problem is None and trial.format == FHIR_R4
    assert trial.document["resourceType"] == "Observation" and trial.tree == ()
    assert trial.record["message"]["source_format"] == FHIR_R4
    assert trial.rows and any(row.fired for row in trial.rows)


def test_explain_keeps_the_group_structure(rules):
    row = next(r for r in rules.routes.rows if r.id == "results-to-north-clinic")
    verdict = explain(row.condition, {"message": {"receiving_facility": "NORTH"}}, None)
    assert (verdict.kind, verdict.held) == ("any", True)
    assert [child.held for child in verdict.children] == [True, False]


def test_the_outcome_saved_as_a_rule_test_passes(source, rules):
    trial = try_message(rules, POTASSIUM)
    content = with_saved_case(to_content(source), "potassium-critical", trial.raw,
                              expected_outcome(trial))
    assert base64.b64decode(content["files"]["rules/tests/messages/test-panel/"
                                              "potassium-critical.hl7"]) == trial.raw
    saved = from_content(content)
    results = {r.case: r for r in run_rule_tests(compile_rule_set(saved), saved)}
    assert results["potassium-critical"].passed, results["potassium-critical"].differences
    assert results["potassium-critical"].file == SAVED_TESTS


def test_field_sources_name_the_hl7_field_a_canonical_path_is_read_from(sources):
    assert sources["results[*].abnormal_flags[*]"] == "OBX-8.1"
    assert sources["message.receiving_facility"] == "MSH-6"
    assert sources["patient.birth_date"] == "PID-7"
