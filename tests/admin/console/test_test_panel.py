"""The test panel over the test client, on SQLite and PostgreSQL: a message tried
against a draft shows every route row of its type with what its conditions saw, in
words; unreadable input is said plainly; a journaled message picked by id is audited
and needs message.read; saving it as a rule test stores it in the draft (its author
or an admin only) and the draft's rule tests then pass with it; and who may open any
of it."""

from __future__ import annotations

import copy
import html

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.change_control import ChangeControl
from engine.rules.draft_templates import instantiate, read_template
from engine.rules.rule_tests import SAVED_TESTS
from engine.store.models import AuditEvent
from tests.queue_rows import PEOPLE, ROOT, as_, entry

ROLES = {role: name for name, role in PEOPLE.items()}
PANEL = {"analyst": "allow", "approver": "allow", "admin": "allow", "operator": "deny",
         "compliance": "deny", "clinician": "deny", "registrar": "deny"}
ACCESS = {
    ("GET", "/test-panel/"): PANEL,
    ("GET", "/test-panel/<int:version>"): PANEL,
    ("POST", "/test-panel/<int:version>/run"): PANEL,
    ("POST", "/test-panel/<int:version>/save"): PANEL,
    ("POST", "/test-panel/<int:version>/run-tests"): PANEL,
}
POTASSIUM = "\n".join([
    "MSH|^~\\&|LIS|RIVERSIDE LAB|EHR|BLDG4|20261124101500-0500||ORU^R01^ORU_R01|K0001|P|2.5.1",
    "PID|1||MRN100^^^RIVERSIDE^MR||ROE^RICHARD||19700305|M",
    "OBR|1|P100|F100|2823-3^Potassium^LN",
    "OBX|1|NM|2823-3^Potassium^LN||6.9|mmol/L|3.5-5.1|HH|||F|||20261124095500-0500",
])
HX = {"HX-Request": "true"}


@pytest.fixture
def draft(console) -> int:
    return ChangeControl(console.engine).create_draft(as_("anna"), "try things")["version"]


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_every_route_of_the_panel_is_in_the_access_table(console):
    routes = {(method, rule.rule) for rule in console.app.url_map.iter_rules()
              if rule.endpoint.startswith("test_panel.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(ACCESS)


def test_the_panel_is_not_in_the_menu_but_its_page_opens(console, draft):
    anna = console.as_("anna")
    assert 'href="/test-panel/' not in anna.text("/messages/")
    page = anna.text(f"/test-panel/{draft}")
    assert f"Try a message against version {draft}" in page
    assert f'hx-post="/test-panel/{draft}/run"' in page and 'name="csrf_token"' in page
    assert f'href="/test-panel/{draft}"' in anna.text("/test-panel/")


def test_a_message_tried_shows_each_row_with_what_it_saw(console, draft):
    answer = console.as_("anna").post(f"/test-panel/{draft}/run", {"message": POTASSIUM},
                                      headers=HX)
    assert answer.status_code == 200
    page = text(answer)
    assert page.lstrip().startswith("{#") is False and f'id="test-panel-{draft}"' in page
    assert "<html" not in page  # a fragment for htmx
    assert "OBX-8 (Abnormal Flags) is one of H, HH" in page
    assert "saw <strong>HH</strong>" in page
    assert 'title="canonical field results[*].abnormal_flags[*], read from OBX-8.1"' in page
    assert 'data-row="abnormal-results-held-for-nurse-review"' in page
    assert "fired" in page and "did not fire" in page
    assert "MSH-6 (Receiving Facility) is one of BLDG7, SOUTH" in page  # the south row
    assert "held until the task of row" in page and "A task for <strong>nurse-review" in page
    assert 'title="OBX-8 (Abnormal Flags)"' in page  # the parsed tree's hover
    assert 'data-destination="ehr-fhir"' in page
    # The results row's checkpoint is due in 2h: said as such, not as 7.2 s.
    assert "due 2 h after it is made" in page


def test_without_htmx_the_result_comes_in_the_whole_page(console, draft):
    page = text(console.as_("abe").post(f"/test-panel/{draft}/run", {"message": POTASSIUM}))
    assert "<html" in page and "OBX-8 (Abnormal Flags)" in page


@pytest.mark.parametrize(("form", "said"), [
    ({"message": "not a message"}, "This message cannot be read:</strong> an HL7 v2 message "
     "must start with an MSH segment (at segment 1)"),
    ({"message": ""}, "Paste an HL7 v2 message or FHIR JSON"),
    ({"message_id": "no-such-message"}, "There is no message with this id"),
])
def test_what_cannot_be_tried_is_said_plainly(console, draft, form, said):
    answer = console.as_("anna").post(f"/test-panel/{draft}/run", form, headers=HX)
    assert said in answer.get_data(as_text=True)
    assert answer.status_code in (200, 400)


def test_a_journaled_message_picked_by_id_is_audited(console, draft):
    _, message_id = entry(console.engine, raw=POTASSIUM.replace("\n", "\r").encode())
    page = text(console.as_("anna").post(f"/test-panel/{draft}/run",
                                         {"message_id": message_id}, headers=HX))
    assert "saw <strong>HH</strong>" in page
    with Session(console.engine) as session:
        seen = session.execute(select(AuditEvent.actor, AuditEvent.target_type,
                                      AuditEvent.target_id)
                               .where(AuditEvent.action == "content.view")).all()
    assert seen == [("anna", "message.test_panel", message_id)]


def test_an_approver_may_not_pick_a_journaled_message(console, draft):
    _, message_id = entry(console.engine, raw=POTASSIUM.replace("\n", "\r").encode())
    abe = console.as_("abe")
    assert 'name="message_id"' not in abe.text(f"/test-panel/{draft}")
    answer = abe.post(f"/test-panel/{draft}/run", {"message_id": message_id})
    assert answer.status_code == 403
    with Session(console.engine) as session:
        assert session.scalar(select(AuditEvent.id).where(
            AuditEvent.action == "content.view")) is None


def test_a_saved_rule_test_then_passes(console, draft):
    anna = console.as_("anna")
    answer = anna.post(f"/test-panel/{draft}/save",
                       {"message": POTASSIUM, "case_id": "potassium-critical"}, headers=HX)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "Saved as the rule test <code>potassium-critical</code>" in text(answer)
    content = ChangeControl(console.engine).content(draft)
    saved = next(d for d in content["documents"] if d["path"] == SAVED_TESTS)
    case = saved["data"]["cases"][0]
    assert case["expect"]["held"] == ["ehr-fhir"]
    assert case["expect"]["tasks"] == [{"queue": "nurse-review",
                                        "kind": "abnormal-result-review", "mode": "hold"}]
    tests = text(anna.post(f"/test-panel/{draft}/run-tests", {}, headers=HX))
    assert 'data-case="potassium-critical"' in tests
    row = tests.split('data-case="potassium-critical"')[1].split("</tr>")[0]
    assert "passes" in row and "fails" not in row
    assert "table-danger" not in tests  # the shipped tests pass too
    again = anna.post(f"/test-panel/{draft}/save",
                      {"message": POTASSIUM, "case_id": "potassium-critical"}, headers=HX)
    assert again.status_code == 409
    assert "already" in text(again)


def test_run_tests_shows_what_differs(console, draft):
    anna = console.as_("anna")
    anna.post(f"/test-panel/{draft}/save", {"message": POTASSIUM, "case_id": "k-high"})
    ChangeControl(console.engine).change(draft, as_("anna"), _unflag)
    tests = text(anna.post(f"/test-panel/{draft}/run-tests", {}, headers=HX))
    row = tests.split('data-case="k-high"')[1].split("</tr>")[0]
    assert "fails" in row and "held: missing ehr-fhir" in row


def _unflag(content):
    """The abnormal row made to want a flag no message has."""
    content = copy.deepcopy(content)
    for document in content["documents"]:
        if document["path"] == "rules/routes/results.yaml":
            document["data"]["rows"][0]["when"]["value"] = ["ZZ"]
    return content


@pytest.mark.parametrize(("who", "code", "said"), [
    ("abe", 403, "Your role may not edit rule-set versions"),
    ("adam", 200, "Saved as the rule test"),
])
def test_only_its_author_or_an_admin_saves_into_a_draft(console, draft, who, code, said):
    answer = console.as_(who).post(f"/test-panel/{draft}/save",
                                   {"message": POTASSIUM, "case_id": "by-someone"},
                                   headers=HX)
    assert answer.status_code == code
    assert said in text(answer)


def test_a_version_that_is_not_a_draft_takes_no_rule_test(console):
    answer = console.as_("adam").post("/test-panel/1/save",
                                      {"message": POTASSIUM, "case_id": "too-late"},
                                      headers=HX)
    assert answer.status_code == 409
    assert "Only a draft can be edited" in text(answer)


def test_save_needs_a_name_and_an_hl7_message(console, draft):
    anna = console.as_("anna")
    unnamed = text(anna.post(f"/test-panel/{draft}/save", {"message": POTASSIUM},
                             headers=HX))
    assert "Name the rule test" in unnamed and "is-invalid" in unnamed
    fhir = text(anna.post(f"/test-panel/{draft}/save",
                          {"message": '{"resourceType": "Patient", "id": "p"}',
                           "case_id": "fhir"}, headers=HX))
    assert "Rule tests take HL7 v2 messages" in fhir or "cannot be read" in fhir


def test_an_unknown_version_is_not_found(console):
    assert console.as_("anna").get("/test-panel/999").status_code == 404


def test_a_for_one_result_condition_is_said_as_the_route_editor_says_it(console):
    template = read_template(ROOT / "rules/templates" / "lab-result-routing")
    version = ChangeControl(console.engine).create_draft(
        as_("anna"), "Critical potassium to the pager",
        change=lambda content: instantiate(template, template.examples(), content))["version"]
    page = text(console.as_("anna").post(f"/test-panel/{version}/run", {"message": POTASSIUM},
                                         headers=HX))
    assert "One result must match these together" in page
    assert 'data-row="cardiology-pager-critical-results"' in page
