"""Starting a draft from a template in the rule studio, over the test client on SQLite:
the drafts page offers the four templates; a template's page asks its questions in
words, refuses unfit answers beside their fields, and makes a draft holding its routes,
policies, rule tests and catalog stubs, whose owners the catalog gate still wants."""

from __future__ import annotations

import html
import re

import pytest

from tests.admin.console.test_studio_screen import services_of

LAB = "/studio/templates/lab-result-routing"
ANSWERS = {"destination": "cardiology-pager", "destination_name": "Cardiology on-call pager",
           "review_queue": "cardiology-review", "test_code": "2823-3", "test_name": "Potassium",
           "summary": "Critical potassium to the cardiology pager", "parent": "1"}


@pytest.fixture
def engine(sqlite_engine):
    return sqlite_engine


def test_the_drafts_page_offers_each_template(console):
    page = console.as_("anna").text("/studio/")
    for name in ("Lab-result routing", "Referral intake", "Discharge coordination",
                 "Appointment reminders"):
        assert name in page, name
    assert f'href="{LAB}"' in page


def test_a_template_asks_its_questions_and_makes_a_draft_that_waits_for_owners(console):
    anna = console.as_("anna")
    page = html.unescape(anna.text(LAB))
    for seen in ("The test's LOINC code (OBX-3)", 'placeholder="e.g. cardiology-pager"',
                 "Route table: <code>rules/routes/‹cardiology-pager›.yaml</code>",
                 "The business and technical owners of both new catalog entries."):
        assert seen in page, seen
    started = anna.post(LAB, ANSWERS)
    assert started.status_code == 302 and started.headers["Location"] == "/studio/2"
    draft = html.unescape(anna.text("/studio/2"))
    assert "started from the Lab-result routing template. Still to fill in:" in draft
    assert "rules/routes/cardiology-pager.yaml" in draft
    assert "catalog/connections/cardiology-review.yaml" in draft
    gates = {gate["gate"]: gate for gate in services_of(console).versions.gates(2)}
    assert not gates["catalog"]["passed"]
    assert any("cardiology-pager" in finding and "business owner" in finding
               for finding in gates["catalog"]["findings"])
    assert gates["tests"]["passed"]


def test_unfit_answers_are_named_beside_their_fields_and_nothing_is_made(console):
    anna = console.as_("anna")
    answer = anna.post(LAB, {**ANSWERS, "destination": "Cardiology Pager", "test_name": ""})
    assert answer.status_code == 400
    page = html.unescape(answer.get_data(as_text=True))
    assert 'id="destination-error">Use a short name' in page
    assert 'id="test_name-error">Enter the test\'s name' in page
    assert 'value="Cardiology Pager"' in page  # what was typed stays
    assert len(services_of(console).versions.history().items) == 1


def test_a_template_never_overwrites_a_connection_the_version_has(console):
    answer = console.as_("anna").post(LAB, {**ANSWERS, "destination": "bed-board"})
    assert answer.status_code == 400
    assert "the draft already has catalog/connections/bed-board.yaml" in answer.get_data(
        as_text=True)


def test_only_authors_start_drafts_from_templates(console):
    assert console.as_("abe").get(LAB).status_code == 403
    assert console.as_("abe").post(LAB, ANSWERS).status_code == 403
    assert console.as_("anna").get("/studio/templates/no-such").status_code == 404


def test_the_gates_say_how_to_fix_what_they_find(console):
    anna = console.as_("anna")
    assert anna.post(LAB, ANSWERS).status_code == 302
    gates = html.unescape(anna.text("/studio/2/gates?full=1"))
    form = "/studio/2/document?path=catalog/connections/cardiology-pager.yaml"
    assert f'Catalog entry <a href="{form}">cardiology-pager</a> has no business owner' in gates
    assert "preview: not run yet" in gates
    assert 'href="/changes/2#impact">Run it on the review page' in gates
    assert not re.search(r"content [0-9a-f]{12}", gates)  # no hash for people to puzzle over


def test_a_secret_the_new_entry_names_and_the_server_lacks_is_said_before_it_goes_live(
        console, monkeypatch):
    monkeypatch.delenv("SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN", raising=False)
    anna = console.as_("anna")
    assert anna.post(LAB, ANSWERS).status_code == 302
    gates = html.unescape(anna.text("/studio/2/gates?full=1"))
    assert "Before it goes live:" in gates
    assert "<code>SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN</code> set (named by" in gates
    assert "SWITCHBOARD_EHR_FHIR_TOKEN" not in gates  # the published version's own
    monkeypatch.setenv("SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN", "a token")
    assert "Before it goes live" not in anna.text("/studio/2/gates?full=1")
    monkeypatch.delenv("SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN")
    review = html.unescape(console.as_("abe").text("/changes/2"))
    assert "<code>SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN</code> set" in review
