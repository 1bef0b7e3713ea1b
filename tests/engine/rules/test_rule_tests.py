"""The rule test runner: passes, and failures reported with readable differences."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from engine.rules.rule_set import Outcome, compile_rule_set
from engine.rules.rule_tests import case_outcome, run_rule_tests
from engine.rules.source import read_rule_source

ROOT = Path(__file__).resolve().parents[3]


def test_every_shipped_rule_test_passes():
    source = read_rule_source(ROOT)
    results = run_rule_tests(compile_rule_set(source), source)
    assert len(results) >= 20
    assert [(r.case, r.differences) for r in results if not r.passed] == []


def test_every_route_row_fires_in_some_rule_test():
    source = read_rule_source(ROOT)
    rule_set = compile_rule_set(source)
    fired = set()
    for doc in source.of_kind("tests"):
        for case in doc.data["cases"]:
            outcome = case_outcome(rule_set, source, doc.path, case)
            assert isinstance(outcome, Outcome), outcome
            fired |= {row.id for row in outcome.decision.rows}
    assert {row.id for row in rule_set.routes.rows} - fired == set()


def failing_copy(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    shutil.copytree(ROOT / "rules", root / "rules")
    shutil.copytree(ROOT / "catalog", root / "catalog")
    path = root / "rules" / "tests" / "discharge.yaml"
    doc = yaml.safe_load(path.read_text())
    expect = doc["cases"][0]["expect"]
    expect["destinations"] = ["bed-board", "lab-system"]
    expect["canonical"] = {"encounter.status": "planned", "patient.nickname": "Al"}
    expect["tasks"] = [{"queue": "care-coordination", "kind": "medication-reconciliation"}]
    path.write_text(yaml.safe_dump(doc))
    return root


def test_failures_name_what_differs(tmp_path):
    root = failing_copy(tmp_path)
    source = read_rule_source(root)
    results = {r.case: r for r in run_rule_tests(compile_rule_set(source), source)}
    failed = results["discharge-fans-out"]
    assert not failed.passed
    assert list(failed.differences) == [
        "canonical encounter.status: expected 'planned', got 'finished'",
        "canonical patient.nickname: expected 'Al', but it is absent",
        "destinations: missing lab-system; unexpected analytics-warehouse, patient-outreach",
        "tasks: unexpected care-coordination/home-health-referral (notify), "
        "scheduling-desk/follow-up-appointment (notify)",
    ]
    assert sum(not r.passed for r in results.values()) == 1


HELD = "abnormal-results-held-for-nurse-review"


def outcome_case(case_id: str, outcome: dict, expect: dict | None = None) -> dict:
    return {"id": case_id, "message": {"file": "messages/fhir-converter/ORU-R01-RMGEAD.hl7"},
            "outcome": outcome, "expect": expect or {"tasks": []}}


def test_an_outcome_case_routes_a_tasks_decision_on_its_message(tmp_path):
    root = tmp_path / "config"
    shutil.copytree(ROOT / "rules", root / "rules")
    shutil.copytree(ROOT / "catalog", root / "catalog")
    (root / "rules" / "tests" / "outcomes.yaml").write_text(yaml.safe_dump({
        "id": "outcomes", "cases": [
            outcome_case("review-approved", {"row": HELD, "reason": "seen"}, {
                "canonical": {"message.type": "TASK", "message.event": "approved",
                              "task_outcome.queue": "nurse-review",
                              "task_outcome.kind": "abnormal-result-review",
                              "task_outcome.reason": "seen",
                              "task_outcome.origin.type": "ORU",
                              "results[0].code": "1554-5"},
                "rows": ["all-events-to-analytics"], "tasks": []}),
            outcome_case("review-with-a-state", {"row": HELD, "state": "accepted"}),
            outcome_case("review-completed", {"row": HELD, "outcome": "completed"}),
            outcome_case("no-checkpoint", {"row": "all-events-to-analytics"}),
            outcome_case("no-such-row", {"row": "nowhere"}),
        ]}))
    source = read_rule_source(root)
    results = {r.case: r for r in run_rule_tests(compile_rule_set(source), source)}
    assert results["review-approved"].differences == ()
    assert {case: results[case].differences for case in (
        "review-with-a-state", "review-completed", "no-checkpoint", "no-such-row")} == {
        "review-with-a-state": (f"outcome: row {HELD} names no states, so its task takes "
                                "none",),
        "review-completed": ("outcome: a hold task is approved or rejected, not completed",),
        "no-checkpoint": ("outcome: row all-events-to-analytics makes no task: it has no "
                          "checkpoint",),
        "no-such-row": ("outcome: there is no route row 'nowhere'",),
    }
