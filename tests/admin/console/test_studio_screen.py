"""The rule studio over the test client, on SQLite: drafts (start, rename, delete, submit),
someone else's draft read-only, the route editor building a row with a nested
condition and a checkpoint without YAML, typed values checked beside their fields, and
the YAML view that shows each problem on its line and refuses a schema error."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.services import services
from engine.change_control import ChangeControl
from engine.store.models import AuditEvent
from tests.queue_rows import as_
from tests.rule_versions import in_review

AUTHORS = {"operator": "deny", "analyst": "allow", "approver": "deny", "compliance": "deny",
           "admin": "allow", "clinician": "deny", "registrar": "deny"}
# Approvers open every page read-only, to see what they will review.
READERS = {**AUTHORS, "approver": "allow"}
ACCESS = {
    ("GET", "/studio/"): READERS,
    ("POST", "/studio/new"): AUTHORS,
    ("GET", "/studio/<int:version>"): READERS,
    ("GET", "/studio/<int:version>/gates"): READERS,
    ("POST", "/studio/<int:version>/summary"): AUTHORS,
    ("GET", "/studio/<int:version>/delete"): AUTHORS,
    ("POST", "/studio/<int:version>/delete"): AUTHORS,
    ("POST", "/studio/<int:version>/submit"): AUTHORS,
    ("GET", "/studio/<int:version>/routes"): READERS,
    ("POST", "/studio/<int:version>/routes"): AUTHORS,
    ("GET", "/studio/<int:version>/yaml"): READERS,
    ("POST", "/studio/<int:version>/yaml"): AUTHORS,
    # The form editors of catalog connections and policy files (test_studio_documents).
    ("GET", "/studio/<int:version>/document"): READERS,
    ("POST", "/studio/<int:version>/document"): AUTHORS,
    ("GET", "/studio/<int:version>/documents/new"): AUTHORS,
    ("POST", "/studio/<int:version>/documents/new"): AUTHORS,
    ("POST", "/studio/<int:version>/document/status"): READERS,
    # A draft started from a template (test_studio_templates).
    ("GET", "/studio/templates/<template_id>"): AUTHORS,
    ("POST", "/studio/templates/<template_id>"): AUTHORS,
    # The mapping editors (test_studio_mappings.py).
    ("GET", "/studio/<int:version>/mappings"): READERS,
    ("POST", "/studio/<int:version>/mappings"): AUTHORS,
    ("GET", "/studio/<int:version>/tables"): READERS,
    ("POST", "/studio/<int:version>/tables"): AUTHORS,
    ("GET", "/studio/<int:version>/concept-maps/<concept_map>"): READERS,
    ("POST", "/studio/<int:version>/concept-maps/<concept_map>"): AUTHORS,
}
RESULTS = "rules/routes/results.yaml"
NEW_TABLE = "rules/routes/critical.yaml"
POTASSIUM = {
    "id": "critical-potassium-to-the-bed-board",
    "description": "Critical potassium to the bed board",
    "match": {"type": "ORU", "event": "R01"},
    "when": {"all": [
        {"hl7": "OBX-3.1", "op": "eq", "value": "2823-3"},
        {"any": [{"hl7": "OBX-8", "op": "in", "value": ["HH", "LL"]},
                 {"hl7": "OBX-5", "op": "gt", "value": 6.5}]},
    ]},
    "to": ["bed-board"],
    "checkpoint": {"mode": "hold", "queue": "nurse-review", "kind": "critical-potassium-review",
                   "description": "Call the ward before the bed board shows it", "due": "30m"},
}


@pytest.fixture
def engine(sqlite_engine):
    """The studio's screens do not depend on the store: SQLite only."""
    return sqlite_engine


def draft(console, name: str = "anna", summary: str = "critical potassium") -> int:
    created = services_of(console).versions.create_draft(as_(name), summary)
    return int(created["version"])


def services_of(console) -> Any:
    with console.app.app_context():
        return services()


def path_of(rule: str, version: int) -> str:
    return rule.replace("<int:version>", str(version))


def test_every_route_of_the_screen_is_in_the_access_table(console):
    routes = {(method, rule.rule) for rule in console.app.url_map.iter_rules()
              if rule.endpoint.startswith("studio.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(ACCESS)


def test_drafts_are_started_renamed_submitted_and_deleted(console):
    anna = console.as_("anna")
    page = anna.text("/studio/")
    assert "No drafts yet" in page and 'id="start-draft"' in page
    assert "Version 1 (published now)" in page
    refused = anna.post("/studio/new", {"summary": " ", "parent": "1"})
    assert refused.status_code == 400 and "Say what the change is for" in refused.text
    started = anna.post("/studio/new", {"summary": "Potassium to the ward", "parent": "1"})
    assert started.status_code == 302 and started.headers["Location"] == "/studio/2"
    page = anna.text("/studio/2")
    for seen in ("Draft 2: Potassium to the ward", "started from version 1", "Routes",
                 "Mappings", "Catalog connections", "Rule tests", RESULTS,
                 'id="submit-draft"', 'id="rename-draft"'):
        assert seen in page, seen
    listing = anna.text("/studio/")
    assert 'href="/studio/2"' in listing and "Potassium to the ward" in listing
    assert 'id="gates-2"' in listing and "schema ✓" in listing
    gates = anna.text("/studio/2/gates")
    assert "schema ✓" in gates and "preview …" in gates and "not run yet" in gates

    anna.post("/studio/2/summary", {"summary": "Critical potassium to the ward"})
    assert services_of(console).versions.show(2)["summary"] == "Critical potassium to the ward"
    anna.post("/studio/new", {"summary": "Second thoughts", "parent": "1"})
    assert "Deleting removes the draft" in anna.text("/studio/3/delete")
    deleted = anna.post("/studio/3/delete")
    assert deleted.status_code == 302
    assert anna.get("/studio/3").status_code == 404
    submitted = anna.post("/studio/2/submit", {"summary": "Potassium, reviewed by the ward"})
    assert submitted.status_code == 302
    shown = services_of(console).versions.show(2)
    assert (shown["status"], shown["summary"]) == ("in_review", "Potassium, reviewed by the ward")
    assert "only a draft can be changed" in anna.text("/studio/2")
    with Session(console.engine) as session:
        actions = session.scalars(select(AuditEvent.action).where(
            AuditEvent.target_type == "rule_set_version")).all()
    assert actions.count("rules.delete") == 1 and "rules.submit" in actions


def test_someone_elses_draft_opens_read_only_and_a_forced_change_is_refused(console):
    version = draft(console, "anna")
    carl_like = console.as_("adam")  # an admin may change anyone's draft
    other = draft(console, "adam", "the admin's own")
    anna = console.as_("anna")
    page = anna.text(f"/studio/{other}")
    assert "adam's draft: you can read it" in page and 'id="submit-draft"' not in page
    editor = anna.text(f"/studio/{other}/routes?path={RESULTS}")
    assert "it is adam's draft" in editor and "<fieldset disabled>" in editor
    for rule, data in (("/studio/<int:version>/summary", {"summary": "mine now"}),
                       ("/studio/<int:version>/submit", {}),
                       ("/studio/<int:version>/delete", {}),
                       ("/studio/<int:version>/yaml?path=" + RESULTS, {"text": "id: x\n"})):
        assert anna.post(path_of(rule, other), data).status_code == 403, rule
    assert services_of(console).versions.show(other)["summary"] == "the admin's own"
    assert carl_like.post(f"/studio/{version}/summary",
                          {"summary": "renamed by the admin"}).status_code == 302
    abe = console.as_("abe")
    assert "anna's draft: you can read it" in abe.text(f"/studio/{version}")
    assert abe.post(f"/studio/{version}/summary", {"summary": "x"}).status_code == 403


def _row_fields(when: dict[str, str], **row: Any) -> dict[str, Any]:
    fields = {"table-id": "critical", "table-description": "Critical results",
              "rows-0-new": "1", "rows-0-id": "", "rows-0-description": "", **row}
    return {**fields, **when}


def test_the_route_editor_builds_a_nested_condition_and_saves_exactly_that(console):
    version = draft(console)
    anna = console.as_("anna")
    url = f"/studio/{version}/routes?path={NEW_TABLE}"
    assert 'id="add-row"' in anna.text(f"/studio/{version}/routes?new=critical")
    added = anna.post(url, {"table-id": "critical", "action": "add-row"},
                      headers={"HX-Request": "true"})
    assert added.status_code == 200 and 'name="rows-0-when-kind"' in added.text
    assert "<datalist" not in added.text  # a fragment: the page keeps its pickers
    when = {"rows-0-when-kind": "all"}
    step = anna.post(url, {**_row_fields(when, **{
        "rows-0-description": "Critical potassium to the bed board"}),
        "action": "add-condition:rows-0-when"}, headers={"HX-Request": "true"})
    assert 'value="critical-potassium-to-the-bed-board"' in step.text  # made from it
    assert 'name="rows-0-when-0-path"' in step.text
    when = {"rows-0-when-kind": "all", "rows-0-when-0-kind": "leaf",
            "rows-0-when-0-source": "hl7", "rows-0-when-0-path": "OBX-3.1",
            "rows-0-when-0-op": "eq", "rows-0-when-0-value": "2823-3"}
    step = anna.post(url, {**_row_fields(when), "action": "add-group:rows-0-when"},
                     headers={"HX-Request": "true"})
    assert "Observation/Result: Observation Identifier, Identifier" in step.text
    assert 'name="rows-0-when-1-0-path"' in step.text
    when.update({"rows-0-when-1-kind": "any", "rows-0-when-1-0-kind": "leaf",
                 "rows-0-when-1-0-source": "hl7", "rows-0-when-1-0-path": "OBX-8",
                 "rows-0-when-1-0-op": "in", "rows-0-when-1-0-value": "HH, LL"})
    step = anna.post(url, {**_row_fields(when), "action": "add-condition:rows-0-when-1"},
                     headers={"HX-Request": "true"})
    assert 'name="rows-0-when-1-1-path"' in step.text
    when.update({"rows-0-when-1-1-kind": "leaf", "rows-0-when-1-1-source": "hl7",
                 "rows-0-when-1-1-path": "OBX-5", "rows-0-when-1-1-op": "gt",
                 "rows-0-when-1-1-value": "6.5"})
    saved = anna.post(url, {**_row_fields(when, **{
        "rows-0-id": "critical-potassium-to-the-bed-board",
        "rows-0-description": "Critical potassium to the bed board",
        "rows-0-types": "ORU", "rows-0-events": "R01", "rows-0-to": ["bed-board"],
        "rows-0-checkpoint": "hold", "rows-0-queue": "nurse-review",
        "rows-0-kind": "critical-potassium-review", "rows-0-due": "30m",
        "rows-0-task-description": "Call the ward before the bed board shows it"}),
        "action": "save"})
    assert saved.status_code == 302, saved.text
    content = services_of(console).versions.content(version)
    stored = next(d for d in content["documents"] if d["path"] == NEW_TABLE)
    assert stored == {"path": NEW_TABLE, "kind": "routes", "data": {
        "id": "critical", "description": "Critical results", "rows": [POTASSIUM]}}
    page = anna.text(url)
    assert "critical-potassium-to-the-bed-board</code> <small class=\"text-muted\">(stable)" in page


def test_the_rows_of_a_shipped_table_move_and_go_and_come_back_unchanged(console):
    version = draft(console)
    anna = console.as_("anna")
    before = next(d for d in services_of(console).versions.content(version)["documents"]
                  if d["path"] == RESULTS)["data"]
    page = anna.text(f"/studio/{version}/routes?path={RESULTS}")
    fields = _posted_fields(page)
    saved = anna.post(f"/studio/{version}/routes?path={RESULTS}", {**fields, "action": "save"})
    assert saved.status_code == 302, saved.text
    after = next(d for d in services_of(console).versions.content(version)["documents"]
                 if d["path"] == RESULTS)["data"]
    assert after == before
    moved = anna.post(f"/studio/{version}/routes?path={RESULTS}",
                      {**fields, "action": "down:rows-0"}, headers={"HX-Request": "true"})
    assert moved.text.index("normal-results-to-ehr") < moved.text.index(
        "abnormal-results-held-for-nurse-review")
    gone = anna.post(f"/studio/{version}/routes?path={RESULTS}",
                     {**fields, "action": "delete-row:rows-3"}, headers={"HX-Request": "true"})
    assert "results-to-south-clinic" not in gone.text


def _posted_fields(page: str) -> dict[str, Any]:
    """What the editor's form would post as it is shown (inputs, selected options)."""
    form = page[page.index('<form method="post"'):]
    fields: dict[str, list[str]] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) == "csrf_token":
            continue
        if 'type="checkbox"' in tag and " checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields.setdefault(name.group(1), []).append(html.unescape(value.group(1) if value else ""))
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>\n?(.*?)</textarea>', form,
                                 re.S):
        fields.setdefault(name, []).append(html.unescape(body))
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        for value in re.findall(r'<option value="([^"]*)" selected', body):
            fields.setdefault(name, []).append(html.unescape(value))
    return fields


def test_values_typed_wrong_are_shown_beside_their_field_and_not_saved(console):
    version = draft(console)
    anna = console.as_("anna")
    url = f"/studio/{version}/routes?path={NEW_TABLE}"
    when = {"rows-0-when-kind": "any",
            "rows-0-when-0-kind": "leaf", "rows-0-when-0-source": "field",
            "rows-0-when-0-path": "orders[*].ordering_facility", "rows-0-when-0-op": "matches",
            "rows-0-when-0-value": "(?i)north (clinic",
            "rows-0-when-1-kind": "leaf", "rows-0-when-1-source": "hl7",
            "rows-0-when-1-path": "OBX-5", "rows-0-when-1-op": "gt",
            "rows-0-when-1-value": "high"}
    fields = _row_fields(when, **{"rows-0-description": "North", "rows-0-to": ["clinic-north"]})
    typed = anna.post(url, {**fields, "action": "none"}, headers={"HX-Request": "true"})
    assert typed.status_code == 200  # checked as typed, before any save
    for key, words in (("rows-0-when-0-value", "Not a valid pattern: missing ), unterminated "
                                               "subpattern at character 11"),
                       ("rows-0-when-1-value", "'high' is not a number or a date")):
        error = re.search(rf'id="{key}-error">([^<]*)<', typed.text)
        assert error and words in html.unescape(error.group(1)), key
        assert f'aria-describedby="{key}-error"' in typed.text
    refused = anna.post(url, {**fields, "action": "save"})
    assert refused.status_code == 400 and "2 things to fix" in refused.text
    paths = [d["path"] for d in services_of(console).versions.content(version)["documents"]]
    assert NEW_TABLE not in paths


def test_the_yaml_view_shows_a_schema_error_on_its_line_and_does_not_save(console):
    version = draft(console)
    anna = console.as_("anna")
    url = f"/studio/{version}/yaml?path={RESULTS}"
    page = anna.text(url)
    text = html.unescape(re.search(r'<textarea[^>]*>(.*?)</textarea>', page, re.S).group(1))
    assert text.startswith("id: results\ndescription:")
    lines = text.split("\n")
    broken_at = lines.index("    to:", lines.index("  - id: normal-results-to-ehr"))
    assert lines[broken_at + 1] == "      - ehr-fhir"
    lines[broken_at:broken_at + 2] = ["    to: ehr-fhir"]  # a text, not a list
    refused = anna.post(url, {"text": "\n".join(lines)})
    assert refused.status_code == 400 and "Not saved" in refused.text
    line = broken_at + 1
    marked = re.search(rf'<li id="line-{line}" class="studio-line-problem">(.*?)</li>',
                       refused.text, re.S)
    assert marked and "is not of type" in html.unescape(marked.group(1))
    assert f'href="#line-{line}">Line {line}</a> <code>rows[1].to</code>' in refused.text
    stored = next(d for d in services_of(console).versions.content(version)["documents"]
                  if d["path"] == RESULTS)["data"]
    assert stored["rows"][1]["to"] == ["ehr-fhir"]
    unreadable = anna.post(url, {"text": "id: [results\n"})
    assert unreadable.status_code == 400 and "not readable YAML" in unreadable.text
    lines[broken_at] = "    to: [ehr-fhir, clinic-north]"
    saved = anna.post(url, {"text": "\n".join(lines)})
    assert saved.status_code == 302
    stored = next(d for d in services_of(console).versions.content(version)["documents"]
                  if d["path"] == RESULTS)["data"]
    assert stored == yaml.safe_load("\n".join(lines))


def test_only_a_draft_is_deleted_by_its_author_or_an_admin_and_never_a_parent(console):
    from engine.rules.lifecycle import Conflict, Forbidden

    versions = services_of(console).versions
    first, second = draft(console, "anna"), draft(console, "anna")
    child = int(versions.create_draft(as_("anna"), "from the draft", first)["version"])
    with pytest.raises(Forbidden):
        versions.delete_draft(second, as_("abe"))
    with pytest.raises(Conflict, match="parent of version"):
        versions.delete_draft(first, as_("anna"))
    versions.submit(second, as_("anna"))
    with pytest.raises(Conflict, match="cannot be deleted"):
        versions.delete_draft(second, as_("adam"))
    assert versions.delete_draft(child, as_("adam"))["status"] == "deleted"
    versions.delete_draft(first, as_("anna"))
    with Session(console.engine) as session:
        deleted = session.execute(select(AuditEvent.actor, AuditEvent.target_id).where(
            AuditEvent.action == "rules.delete")).all()
    assert sorted(deleted) == [("adam", str(child)), ("anna", str(first))]



POTASSIUM_SCOPED = {**POTASSIUM, "when": {"some": {"of": "results[*]", "where": {"all": [
    {"field": "code", "op": "eq", "value": "2823-3"},
    {"any": [{"field": "abnormal_flags[*]", "op": "in", "value": ["HH", "LL"]},
             {"field": "value.number", "op": "gt", "value": 6.5}]}]}}}}


def _step(anna, url: str, fields: dict[str, Any], action: str) -> str:
    reply = anna.post(url, {**fields, "action": action}, headers={"HX-Request": "true"})
    assert reply.status_code == 200, reply.text
    return reply.text


def test_the_builder_makes_one_result_meet_its_conditions_together(console):
    version = draft(console)
    anna = console.as_("anna")
    url = f"/studio/{version}/routes?path={NEW_TABLE}"
    _step(anna, url, {"table-id": "critical"}, "add-row")
    fields = _row_fields({"rows-0-when-kind": "all", "rows-0-when-lone": "1"})
    step = _step(anna, url, fields, "add-scope:rows-0-when")
    assert 'name="rows-0-when-0-of"' in step and "Choose the list…" in step
    assert "One item must match all of these together" in step
    fields.update({"rows-0-when-0-kind": "some", "rows-0-when-0-of": "results[*]",
                   "rows-0-when-0-join": "all", "rows-0-when-0-0-kind": "leaf",
                   "rows-0-when-0-0-path": "code", "rows-0-when-0-0-op": "eq",
                   "rows-0-when-0-0-value": "2823-3"})
    step = _step(anna, url, fields, "add-group:rows-0-when-0")
    assert "One result must match all of these together" in step
    assert 'list="items-results"' in step
    assert "The test or observation code (a LOINC code, say)" in step
    assert 'name="rows-0-when-0-0-source"' not in step  # a result's fields, never HL7
    inner = step[step.index('id="rows-0-when-0-1-kind"'):]
    assert 'value="some"' not in inner[:inner.index("</select>")]  # scopes do not nest
    fields.update({"rows-0-when-0-1-kind": "any", "rows-0-when-0-1-0-kind": "leaf",
                   "rows-0-when-0-1-0-path": "abnormal_flags[*]", "rows-0-when-0-1-0-op": "in",
                   "rows-0-when-0-1-0-value": "HH, LL"})
    _step(anna, url, fields, "add-condition:rows-0-when-0-1")
    fields.update({"rows-0-when-0-1-1-kind": "leaf", "rows-0-when-0-1-1-path": "value.number",
                   "rows-0-when-0-1-1-op": "gt", "rows-0-when-0-1-1-value": "6.5"})
    saved = anna.post(url, {**fields, "rows-0-id": POTASSIUM["id"],
                            "rows-0-description": POTASSIUM["description"],
                            "rows-0-types": "ORU", "rows-0-events": "R01",
                            "rows-0-to": ["bed-board"], "rows-0-checkpoint": "hold",
                            "rows-0-queue": "nurse-review",
                            "rows-0-kind": "critical-potassium-review", "rows-0-due": "30m",
                            "rows-0-task-description": POTASSIUM["checkpoint"]["description"],
                            "action": "save"})
    assert saved.status_code == 302, saved.text
    stored = next(d for d in services_of(console).versions.content(version)["documents"]
                  if d["path"] == NEW_TABLE)
    assert stored["data"] == {"id": "critical", "description": "Critical results",
                              "rows": [POTASSIUM_SCOPED]}
    page = anna.text(url)
    assert '<datalist id="items-results">' in page and "One result must match" in page


def test_two_conditions_on_results_are_offered_to_be_tested_on_one_result(console):
    version = draft(console)
    anna = console.as_("anna")
    url = f"/studio/{version}/routes?path={NEW_TABLE}"
    fields = _row_fields({"rows-0-when-kind": "all", "rows-0-when-lone": "1", **{
        f"rows-0-when-{i}-{part}": value for i, leaf in enumerate(
            (("results[*].code", "eq", "2823-3"), ("results[*].abnormal_flags[*]", "in", "HH")))
        for part, value in zip(("kind", "path", "op", "value"), ("leaf", *leaf), strict=True)}})
    step = _step(anna, url, fields, "none")
    hint = re.search(r'id="rows-0-when-one-item-hint"[^>]*>(.*?)</div>', step, re.S)
    assert hint and "each may be met by a different result" in hint.group(1)
    assert 'value="one-item:rows-0-when"' in hint.group(1)
    gathered = _step(anna, url, fields, "one-item:rows-0-when")
    assert "one-item-hint" not in gathered
    assert 'name="rows-0-when-0-of"' in gathered and 'value="abnormal_flags[*]"' in gathered
    assert re.search(r'<option value="results\[\*\]" selected>', gathered)


def test_every_button_and_field_that_redraws_the_editor_waits_for_no_older_reply(console):
    """A value typed then a button pressed send two requests at once: the later posts
    the whole form, so it replaces the earlier rather than racing it."""
    version = draft(console)
    page = console.as_("anna").text(f"/studio/{version}/routes?path={RESULTS}")
    form = page[page.index('id="route-form"'):]
    form = form[:form.index("</form>")]
    posting = re.findall(r"<[^>]*hx-post=[^>]*>", form)
    assert len(posting) > 20
    assert all('hx-sync="closest form:replace"' in tag for tag in posting)


def test_a_scoped_field_the_items_lack_is_shown_beside_it(console):
    version = draft(console)
    services_of(console).versions.put_document(version, as_("anna"), NEW_TABLE, "routes", {
        "id": "critical", "rows": [{"id": "r", "to": ["bed-board"], "when": {"some": {
            "of": "results[*]", "where": {"field": "flags", "op": "exists"}}}}]})
    page = console.as_("anna").text(f"/studio/{version}/routes?path={NEW_TABLE}")
    finding = re.search(r'id="rows-0-when-0-0-path-finding">(.*?)</div>', page, re.S)
    assert finding and "'flags' is not a field of the items of results[*]" in html.unescape(
        finding.group(1))


def _every_route_table(console, version: int) -> list[tuple[str, Any]]:
    """The draft's route tables and every template's, filled in with its examples."""
    from pathlib import Path

    from engine.rules.draft_templates import TEMPLATES, instantiate, read_templates
    from tests.queue_rows import ROOT

    content = services_of(console).versions.content(version)
    tables = [(d["path"], d["data"]) for d in content["documents"] if d["kind"] == "routes"]
    for template in read_templates(Path(ROOT) / TEMPLATES):
        filled = instantiate(template, template.examples(), {"documents": []})
        tables += [(f"rules/routes/{template.id}.yaml", d["data"])
                   for d in filled["documents"] if d["kind"] == "routes"]
    return tables


def test_every_shipped_and_template_table_saved_through_the_form_is_unchanged(console):
    version = draft(console)
    anna = console.as_("anna")
    tables = _every_route_table(console, version)
    assert len(tables) == 13
    for path, data in tables:
        services_of(console).versions.put_document(version, as_("anna"), path, "routes", data)
        url = f"/studio/{version}/routes?path={path}"
        saved = anna.post(url, {**_posted_fields(anna.text(url)), "action": "save"})
        assert saved.status_code == 302, (path, saved.text[:2000])
        after = next(d for d in services_of(console).versions.content(version)["documents"]
                     if d["path"] == path)["data"]
        assert after == data, path


def test_a_change_to_a_version_in_review_is_refused_on_its_page(console):
    version = draft(console)
    anna = console.as_("anna")
    assert anna.post(f"/studio/{version}/submit").status_code == 302
    again = anna.post(f"/studio/{version}/submit")
    assert again.status_code == 409
    flashed = re.search(r'<div class="alert alert-danger[^"]*"[^>]*>(.*?)</div>', again.text,
                        re.S)
    assert flashed and html.unescape(flashed.group(1)).split("</button>")[1].strip() == (
        f"Version {version} is in_review: it cannot be submitted. Only a draft can be "
        "submitted for review.")
    assert f"Version {version}: critical potassium</h1>" in again.text  # the version's page
    page = anna.text(f"/studio/{version}/routes?path={RESULTS}")
    refused = anna.post(f"/studio/{version}/routes?path={RESULTS}",
                        {**_posted_fields(page), "action": "save"})
    assert refused.status_code == 409
    assert (f"Version {version} is in review: only a draft can be changed. Start a new "
            "draft from it to change it.") in html.unescape(refused.text)


def test_a_route_table_the_form_cannot_read_is_shown_with_its_problem(console):
    version = draft(console)
    services_of(console).versions.put_document(version, as_("anna"), NEW_TABLE, "routes",
                                               {"id": "critical", "rows": "every result"})
    anna = console.as_("anna")
    editor = anna.get(f"/studio/{version}/routes?path={NEW_TABLE}")
    assert editor.status_code == 200
    problem = re.search(r'id="unreadable-table"[^>]*>(.*?)</div>', editor.text, re.S)
    assert problem and "is not of type 'array'" in html.unescape(problem.group(1))
    assert f'href="/studio/{version}/yaml?path={NEW_TABLE}"' in problem.group(1)
    view = anna.get(f"/studio/{version}/yaml?path={NEW_TABLE}")
    assert view.status_code == 200
    assert re.search(r'<li id="line-2" class="studio-line-problem">.*?is not of type',
                     html.unescape(view.text), re.S)


def test_a_rejected_version_is_sent_back_to_its_author_with_why_and_a_fix(console):
    version = in_review(console.engine)
    ChangeControl(console.engine).reject(version, as_("abe"), "Name the pager's owner")
    anna = console.as_("anna")
    listing = html.unescape(anna.text("/studio/"))
    assert "Sent back to you" in listing and "Name the pager's owner</q>" in listing
    assert "Sent back to you" not in console.as_("adam").text("/studio/")  # only its author's
    page = html.unescape(anna.text(f"/studio/{version}"))
    assert "Sent back by abe" in page and "Name the pager's owner" in page
    fixed = anna.post(f"/changes/{version}/fix", {})
    assert fixed.status_code == 302
    assert "Sent back to you" not in anna.text("/studio/")  # fixed in a draft now


def test_anyone_in_the_studio_reads_the_rules_running_now(console):
    page = console.as_("abe").text("/studio/")
    assert 'href="/studio/1" id="running-rules"' in page
    assert 'id="read-only"' in console.as_("abe").text("/studio/1")
