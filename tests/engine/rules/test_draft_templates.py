"""The templates analysts start drafts from (rules/templates/): each one, filled in with
its examples on the shipped configuration, adds its routes, policies, rule tests and
catalog stubs; lints clean but for the owners a person must name; and its tests pass
beside the shipped ones, which it leaves passing."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import pytest

from engine.commands.rules import lint_command
from engine.rules.draft_templates import TemplateError, instantiate, read_template, read_templates
from engine.rules.export import import_content
from engine.rules.lint import lint
from engine.rules.rule_set import compile_rule_set
from engine.rules.rule_tests import run_rule_tests
from engine.rules.snapshot import from_content

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = ROOT / "rules" / "templates"
NAMES = ["appointment-reminders", "discharge-coordination", "lab-result-routing",
         "referral-intake"]


@pytest.fixture(scope="module")
def shipped() -> dict:
    return import_content(ROOT)


@pytest.fixture(scope="module")
def templates() -> dict:
    return {template.id: template for template in read_templates(TEMPLATES)}


def test_the_four_templates_ship(templates):
    assert sorted(templates) == NAMES
    for template in templates.values():
        assert template.name and template.description and template.to_fill_in
        kinds = {doc.kind for doc in template.source.documents}
        assert {"routes", "policies", "tests", "connection"} <= kinds, template.id


@pytest.mark.parametrize("name", NAMES)
def test_a_filled_in_template_lints_clean_but_for_the_owners_to_name(name, templates, shipped):
    template = templates[name]
    content = instantiate(template, template.examples(), shipped)
    source = from_content(content)
    findings = lint(source)
    assert findings, "the stubs have no owners yet, and lint must say so"
    assert {finding.category for finding in findings} == {"incomplete-destination"}
    assert {finding.problem.rsplit(" has no ", 1)[1] for finding in findings} == {
        "business owner", "technical owner"}
    added = {doc["path"] for doc in content["documents"]} - {
        doc["path"] for doc in shipped["documents"]}
    destination = template.examples()["destination"]
    assert f"rules/routes/{destination}.yaml" in added
    assert f"catalog/connections/{destination}.yaml" in added


@pytest.mark.parametrize("name", NAMES)
def test_its_rule_tests_pass_and_the_shipped_ones_still_do(name, templates, shipped):
    template = templates[name]
    source = from_content(instantiate(template, template.examples(), shipped))
    results = run_rule_tests(compile_rule_set(source), source)
    assert [result for result in results if not result.passed] == []
    destination = template.examples()["destination"]
    assert any(result.file == f"rules/tests/{destination}.yaml" for result in results)


def test_its_rule_tests_fail_without_its_routes(templates, shipped):
    template = templates["lab-result-routing"]
    content = instantiate(template, template.examples(), shipped)
    content["documents"] = [doc for doc in content["documents"]
                            if doc["path"] != "rules/routes/cardiology-pager.yaml"]
    source = from_content(content)
    failed = {result.case: result.differences
              for result in run_rule_tests(compile_rule_set(source), source) if not result.passed}
    assert failed == {"cardiology-pager-critical-held-for-review": (
        "rows: missing cardiology-pager-critical-results",
        "held: missing cardiology-pager",
        "tasks: missing cardiology-review/critical-result-review (hold)")}


def test_values_fill_names_texts_messages_and_secret_variables(templates, shipped):
    template = templates["lab-result-routing"]
    values = {**template.examples(), "destination": "renal-pager", "test_code": "2160-0",
              "test_name": "Creatinine"}
    content = instantiate(template, values, shipped)
    documents = {doc["path"]: doc["data"] for doc in content["documents"]}
    entry = documents["catalog/connections/renal-pager.yaml"]
    assert entry["endpoint"]["auth_secret_env"] == "SWITCHBOARD_RENAL_PAGER_TOKEN"
    row = documents["rules/routes/renal-pager.yaml"]["rows"][0]
    assert row["id"] == "renal-pager-critical-results" and row["to"] == ["renal-pager"]
    assert row["when"]["some"]["where"]["all"][0]["value"] == "2160-0"
    assert "Creatinine" in row["description"]
    assert "renal-pager" not in str(shipped)
    assert "${" not in str(documents) and "${" not in str(content["files"])


def test_refused_values_are_named_with_what_to_enter(templates, shipped):
    template = templates["lab-result-routing"]
    values = {**template.examples(), "destination": "Cardiology Pager", "test_name": ""}
    with pytest.raises(TemplateError) as refused:
        instantiate(template, values, shipped)
    assert refused.value.problems == {
        "destination": "Use a short name: lower-case letters, digits and hyphens, starting "
                       "with a letter, for example cardiology-pager",
        "test_name": "Enter the test's name",
    }


def test_a_template_never_overwrites_what_the_draft_has(templates, shipped):
    template = templates["appointment-reminders"]
    once = instantiate(template, template.examples(), shipped)
    with pytest.raises(TemplateError, match=r"the draft already has .*dental-reminders\.yaml"):
        instantiate(template, template.examples(), once)
    clash = {**template.examples(), "destination": "patient-outreach"}
    with pytest.raises(TemplateError, match=r"catalog/connections/patient-outreach\.yaml"):
        instantiate(template, clash, shipped)


def test_a_placeholder_no_parameter_declares_is_refused_when_read(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(TEMPLATES / "appointment-reminders", folder)
    route = folder / "rules" / "routes" / "${destination}.yaml"
    route.write_text(route.read_text().replace("${destination_name}", "${destinaton_name}"))
    with pytest.raises(TemplateError, match="unknown parameters: destinaton_name"):
        read_template(folder)


def test_a_template_file_that_breaks_its_schema_is_refused(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(TEMPLATES / "appointment-reminders", folder)
    about = folder / "template.yaml"
    about.write_text(about.read_text().replace("kind: name", "kind: colour", 1))
    with pytest.raises(TemplateError, match=r"parameters\[0\]\.kind"):
        read_template(folder)


def test_what_a_case_excludes_fails_it_when_present(templates, shipped):
    template = templates["lab-result-routing"]
    content = instantiate(template, template.examples(), shipped)
    key = "rules/tests/messages/cardiology-pager-normal.hl7"
    message = base64.b64decode(content["files"][key])
    content["files"][key] = base64.b64encode(message.replace(b"|N|||F\r", b"|LL|||F\r")).decode()
    source = from_content(content)
    failed = {result.case: result.differences
              for result in run_rule_tests(compile_rule_set(source), source) if not result.passed}
    assert failed == {"cardiology-pager-normal-not-sent": (
        "rows: unexpected cardiology-pager-critical-results",
        "destinations: unexpected cardiology-pager")}


def test_rules_lint_lints_the_templates_too(tmp_path):
    for folder in ("rules", "catalog"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    out = io.StringIO()
    assert lint_command(tmp_path, out) == 0, out.getvalue()
    route = tmp_path / "rules/templates/lab-result-routing/rules/routes/${destination}.yaml"
    route.write_text(route.read_text().replace("op: eq,", "op: equals,"))
    out = io.StringIO()
    assert lint_command(tmp_path, out) == 1
    assert ("rules/templates/lab-result-routing (rules/routes/cardiology-pager.yaml): "
            "rows[0].when.some.where.all[0].op: 'equals' is not one of") in out.getvalue()


def test_the_lab_template_needs_the_same_result_to_be_the_test_and_critical(templates, shipped):
    """Two separate conditions on results[*] would each be met by a different result: a
    critical sodium beside a normal potassium would page the cardiologist."""
    template = templates["lab-result-routing"]
    content = instantiate(template, template.examples(), shipped)
    route = next(d for d in content["documents"]
                 if d["path"] == "rules/routes/cardiology-pager.yaml")
    scoped = route["data"]["rows"][0]["when"]["some"]["where"]["all"]
    route["data"]["rows"][0]["when"] = {"all": [
        {**scoped[0], "field": "results[*].code"},
        {**scoped[1], "field": "results[*].abnormal_flags[*]"}]}
    source = from_content(content)
    failed = {result.case for result in run_rule_tests(compile_rule_set(source), source)
              if not result.passed}
    assert failed == {"cardiology-pager-another-tests-critical-flag-not-sent"}
