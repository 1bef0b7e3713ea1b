"""The linter: the shipped example is clean, and each broken configuration under
broken_configs/ produces exactly its expected finding."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from engine.rules.lint import lint
from engine.rules.source import read_rule_source

ROOT = Path(__file__).resolve().parents[3]
BROKEN = Path(__file__).parent / "broken_configs"
CATEGORIES = sorted(p.name for p in BROKEN.iterdir() if p.is_dir())


def test_the_shipped_example_is_clean():
    assert [str(f) for f in lint(read_rule_source(ROOT))] == []


def test_every_category_has_a_broken_configuration():
    expected = [
        "bad-regex", "duplicate-row", "identifier-in-de-identified", "incomplete-destination",
        "never-holds", "schema", "task-access", "unknown-destination", "unknown-field",
    ]
    assert expected == CATEGORIES


@pytest.mark.parametrize("category", CATEGORIES)
def test_broken_configuration_gives_its_exact_finding(category):
    root = BROKEN / category
    expected = (root / "expected.txt").read_text().strip().splitlines()
    findings = lint(read_rule_source(root))
    assert [str(f) for f in findings] == expected
    assert {f.category for f in findings} == {category}


def test_what_only_compiling_finds_is_reported_with_its_file(tmp_path):
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "catalog", tmp_path / "catalog")
    patient = tmp_path / "rules" / "mappings" / "patient.yaml"
    patient.write_text(patient.read_text().replace(
        "lookup: administrative-sex", "lookup: administrative-gender"))
    assert [str(f) for f in lint(read_rule_source(tmp_path))] == [
        "rules/mappings/patient.yaml: fields.patient.gender: "
        "no lookup table 'administrative-gender'"
    ]


@pytest.mark.parametrize(("notify_role", "queue_roles", "expected"), [
    ("operator", ["operator"], []),
    ("admin", None, []),
    ("clinician", ["operator"],
     ["rules/policies/default.yaml: policies[0].escalation.notify_role: escalations to "
      "clinician land in task queue 'escalations', where clinician may not act"]),
    ("operator", None,
     ["rules/policies/default.yaml: policies[0].escalation.notify_role: escalations to "
      "operator land in task queue 'escalations', which is not in the catalog: only admins "
      "can work them"]),
])
def test_an_escalation_reaches_a_role_that_may_act_on_it(tmp_path, notify_role, queue_roles,
                                                         expected):
    """The escalation job puts a task in the escalations queue for the policy's role:
    a role that may not act on that queue would never see it."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "catalog", tmp_path / "catalog")
    policies = tmp_path / "rules" / "policies" / "default.yaml"
    policies.write_text(policies.read_text().replace(
        "notify_role: admin", f"notify_role: {notify_role}", 1))
    escalations = tmp_path / "catalog" / "connections" / "escalations.yaml"
    if queue_roles is None:
        escalations.unlink()
    else:
        entry = yaml.safe_load(escalations.read_text())
        entry["task_access"] = {"act": queue_roles}
        escalations.write_text(yaml.safe_dump(entry))
    findings = lint(read_rule_source(tmp_path))
    assert [str(f) for f in findings] == expected
    assert {f.category for f in findings} <= {"task-access"}


def scope(of, where, kind="some"):
    return {kind: {"of": of, "where": where}}


CODE_K = {"field": "code", "op": "eq", "value": "2823-3"}


@pytest.mark.parametrize(("when", "expected"), [
    # paths in a scope are relative to the list's items
    (scope("results[*]", {"all": [CODE_K, {"field": "abnormal_flags[*]", "op": "in",
                                           "value": ["HH", "LL"]}]}), []),
    (scope("results[*]", {"all": [CODE_K, {"not": {"field": "flag", "op": "exists"}}]}),
     ["rows[0].when.some.where.all[1].not.field: 'flag' is not a field of the items of "
      "results[*]"]),
    (scope("results[*]", {"field": "results[*].code", "op": "exists"}),
     ["rows[0].when.some.where.field: 'results[*].code' is not a field of the items of "
      "results[*]"]),
    (scope("patient.identifiers[*]", {"field": "value", "op": "matches", "value": "("}),
     ["rows[0].when.some.where.value: regular expression does not compile: missing ), "
      "unterminated subpattern at position 0"]),
    # an unknown list is reported once, not with every path under it
    (scope("order[*]", CODE_K, "every"),
     ["rows[0].when.every.of: 'order[*]' is not a field of the canonical model"]),
    # one item cannot be two things at once; two items can
    ({"all": [scope("results[*]", {"all": [CODE_K, {**CODE_K, "value": "2951-2"}]})]},
     ["rows[0]: row 'r' can never fire: code of one results[*] item would have to be "
      "'2823-3' and '2951-2' at once"]),
    ({"all": [scope("results[*]", CODE_K), scope("results[*]", {**CODE_K, "value": "2951-2"})]},
     []),
])
def test_conditions_in_a_scope_are_checked_against_the_items(tmp_path, when, expected):
    shutil.copytree(BROKEN / "unknown-field", tmp_path, dirs_exist_ok=True)
    routes = {"id": "labs", "rows": [{"id": "r", "when": when, "to": ["lab-out"]}]}
    (tmp_path / "rules" / "routes" / "labs.yaml").write_text(yaml.safe_dump(routes))
    findings = lint(read_rule_source(tmp_path))
    assert [str(f) for f in findings] == [f"rules/routes/labs.yaml: {e}" for e in expected]
