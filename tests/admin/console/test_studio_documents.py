"""The rule studio's form editors for catalog connections and exception policies, over
the test client on SQLite: a connection made field by field with its completeness
checked as it is typed, a secret named by its variable only, every shipped connection
and policy file saved through its untouched form unchanged, values that are not what
their field takes refused beside the field, policies added and removed, and read-only
for those who may not change the draft."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import yaml

from tests.admin.console.test_studio_screen import draft, services_of

ROOT = Path(__file__).resolve().parents[3]
NEW_CONNECTION = "/studio/{v}/documents/new?kind=connection"
PAGER = {
    "id": "cardiology-pager", "name": "Cardiology on-call pager",
    "description": "Critical potassium results, after a nurse's review.",
    "direction": "outbound", "transport": "http",
    "endpoint.url": "https://pager.cardiology.example/alerts", "endpoint.method": "POST",
    "endpoint.auth_secret_env": "SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN",
    "format": "canonical-json", "classification": "phi",
    "data_scope": ["message.control_id", "patient.names", "results"],
    "recovery_procedure": "Retry the dead letters once the pager answers again.",
}
OWNERS = {"business_owner.name": "Dr. Ada Osei", "business_owner.email": "ada.osei@example.org",
          "technical_owner.name": "Cardiology IT", "technical_owner.email": "cardio-it@example.org",
          "technical_owner.pager": "cardio-it-oncall"}


@pytest.fixture
def engine(sqlite_engine):
    return sqlite_engine


def stored(console, version: int, path: str):
    content = services_of(console).versions.content(version)
    return next((d["data"] for d in content["documents"] if d["path"] == path), None)


def test_an_analyst_adds_a_connection_field_by_field_and_sees_what_it_lacks(console):
    version = draft(console)
    anna = console.as_("anna")
    page = anna.text(NEW_CONNECTION.format(v=version))
    assert 'name="endpoint.url"' not in page and "Choose the transport first" in page
    for seen in ('name="business_owner.name"', 'name="data_scope" value="results"',
                 "environment variable", 'id="save-document"'):
        assert seen in page, seen
    assert 'type="password"' not in page  # a secret is never typed in

    # As it is typed: the badge says what is still missing.
    status = anna.post(f"/studio/{version}/document/status?kind=connection", PAGER)
    assert status.status_code == 200
    badge = html.unescape(status.get_data(as_text=True))
    assert "Incomplete" in badge and "business owner, technical owner" in badge
    status = anna.post(f"/studio/{version}/document/status?kind=connection", {**PAGER, **OWNERS})
    assert "Complete" in status.get_data(as_text=True)

    saved = anna.post(NEW_CONNECTION.format(v=version), {**PAGER, **OWNERS, "action": "save"})
    path = "catalog/connections/cardiology-pager.yaml"
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    assert saved.headers["Location"] == f"/studio/{version}/document?path={path}"
    assert stored(console, version, path) == {
        "id": "cardiology-pager", "name": "Cardiology on-call pager",
        "description": "Critical potassium results, after a nurse's review.",
        "direction": "outbound", "transport": "http",
        "endpoint": {"url": "https://pager.cardiology.example/alerts", "method": "POST",
                     "auth_secret_env": "SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN"},
        "format": "canonical-json",
        "business_owner": {"name": "Dr. Ada Osei", "email": "ada.osei@example.org"},
        "technical_owner": {"name": "Cardiology IT", "email": "cardio-it@example.org",
                            "pager": "cardio-it-oncall"},
        "data_scope": ["message.control_id", "patient.names", "results"],
        "classification": "phi",
        "recovery_procedure": "Retry the dead letters once the pager answers again.",
    }
    page = html.unescape(anna.text(f"/studio/{version}/document?path={path}"))
    assert "Complete" in page and 'value="https://pager.cardiology.example/alerts"' in page


def test_choosing_the_transport_draws_its_settings(console):
    version = draft(console)
    answer = console.as_("anna").post(NEW_CONNECTION.format(v=version),
                                      {"transport": "task-queue", "action": "refresh"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'name="endpoint.queue"' in page and 'name="endpoint.url"' not in page
    assert 'name="task_access.act"' in page  # a task queue says who works its tasks


def test_values_that_are_not_what_their_field_takes_are_refused_beside_it(console):
    version = draft(console)
    bad = {**PAGER, **OWNERS, "id": "Cardiology Pager", "sla.max_delivery_minutes": "soon",
           "endpoint.auth_secret_env": "my-secret-token", "action": "save"}
    answer = console.as_("anna").post(NEW_CONNECTION.format(v=version), bad)
    assert answer.status_code == 400
    page = html.unescape(answer.get_data(as_text=True))
    assert "Not saved" in page
    assert 'id="f-sla-max_delivery_minutes-problem">Enter a whole number' in page
    assert 'id="f-id-problem">Not in the form this field takes' in page
    assert 'id="f-endpoint-auth_secret_env-problem">Not in the form this field takes' in page
    assert stored(console, version, "catalog/connections/Cardiology Pager.yaml") is None


def test_a_new_connection_may_not_take_an_id_the_draft_has(console):
    version = draft(console)
    answer = console.as_("anna").post(NEW_CONNECTION.format(v=version),
                                      {**PAGER, **OWNERS, "id": "bed-board", "action": "save"})
    assert answer.status_code == 400
    assert "already has catalog/connections/bed-board.yaml" in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", sorted(
    [f"catalog/connections/{p.name}" for p in (ROOT / "catalog/connections").glob("*.yaml")]
    + [f"rules/policies/{p.name}" for p in (ROOT / "rules/policies").glob("*.yaml")]))
def test_every_shipped_document_saved_through_its_untouched_form_is_unchanged(console, path):
    version = draft(console)
    anna = console.as_("anna")
    page = anna.get(f"/studio/{version}/document?path={path}")
    assert page.status_code == 200
    form = _form_values(page.get_data(as_text=True))
    saved = anna.post(f"/studio/{version}/document?path={path}", {**form, "action": "save"})
    assert saved.status_code == 302, html.unescape(saved.get_data(as_text=True))[-3000:]
    assert stored(console, version, path) == yaml.safe_load((ROOT / path).read_text())


def test_policies_are_added_and_removed_in_the_form(console):
    version = draft(console)
    anna = console.as_("anna")
    path = "rules/policies/ehr.yaml"
    form = _form_values(anna.text(f"/studio/{version}/document?path={path}"))
    added = anna.post(f"/studio/{version}/document?path={path}", {**form, "action": "add:policies"})
    page = added.get_data(as_text=True)
    assert 'name="policies[3].max_attempts"' in page
    form = _form_values(page)
    form.update({"policies[3].connections": ["clinic-north"], "policies[3].error_classes":
                 ["rejected"], "policies[3].max_attempts": "1", "policies[3].backoff.kind": "fixed",
                 "policies[3].dead_letter.owner_role": "analyst"})
    redrawn = anna.post(f"/studio/{version}/document?path={path}", {**form, "action": "refresh"})
    assert 'name="policies[3].backoff.delay"' in redrawn.get_data(as_text=True)
    form = _form_values(redrawn.get_data(as_text=True))
    form["policies[3].backoff.delay"] = "1m"
    form = {k: v for k, v in form.items() if not k.startswith("policies[1].")}
    saved = anna.post(f"/studio/{version}/document?path={path}", {**form, "action": "save"})
    assert saved.status_code == 302, html.unescape(saved.get_data(as_text=True))[-3000:]
    policies = stored(console, version, path)["policies"]
    assert [p["connections"] for p in policies] == [["ehr-fhir"], ["ehr-referral-status"],
                                                    ["clinic-north"]]
    assert policies[2] == {"connections": ["clinic-north"], "error_classes": ["rejected"],
                           "max_attempts": 1, "backoff": {"kind": "fixed", "delay": "1m"},
                           "dead_letter": {"owner_role": "analyst"}}


def test_someone_elses_draft_and_a_version_in_review_open_read_only(console):
    version = draft(console)
    path = "catalog/connections/bed-board.yaml"
    page = console.as_("abe").text(f"/studio/{version}/document?path={path}")
    assert 'id="read-only"' in page and 'id="save-document"' not in page
    assert console.as_("abe").post(f"/studio/{version}/document?path={path}",
                                   {"name": "x", "action": "save"}).status_code == 403
    assert console.as_("abe").get(NEW_CONNECTION.format(v=version)).status_code == 403
    before = stored(console, version, path)
    assert console.as_("adam").text(f"/studio/{version}/document?path={path}")
    assert stored(console, version, path) == before


def _form_values(page: str) -> dict[str, object]:
    """What a browser would post from the page's document form, untouched."""
    start = page.index('id="document-form"')
    form = page[start:page.index("</form>", start)]
    values: dict[str, list[str]] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) == "csrf_token":
            continue
        kind = re.search(r'type="([^"]+)"', tag)
        if kind and kind.group(1) == "checkbox" and " checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        values.setdefault(name.group(1), []).append(html.unescape(value.group(1) if value else ""))
    for name, text in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        values.setdefault(name, []).append(html.unescape(text))
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r"<option(?: value=\"[^\"]*\")? selected>([^<]*)</option>", options)
        values.setdefault(name, []).append(html.unescape(chosen.group(1)) if chosen else "")
    lists = ("connections", "error_classes", "data_scope", "see", "payload", "act")
    return {k: v if len(v) > 1 or k.endswith(lists) else v[0] for k, v in values.items()}
