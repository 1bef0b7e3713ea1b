"""The console's message browser over Flask's test client, on SQLite and PostgreSQL:
each filter through the search form, the dashboard's links, sorting and pages; saved
searches; a message's page; each content view audited and refused to compliance;
retrying a delivery, reprocessing a message, and both in bulk with a reason and
progress."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import urlencode

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.pipeline import Pipeline
from engine.store.models import AuditEvent, Delivery, ExceptionItem, JournalEntry
from tests.engine.store.test_message_search import adt, oru
from tests.queue_rows import (
    HELD_SAMPLE,
    PEOPLE,
    as_,
    delivery,
    entry,
    exception_item,
    ingest,
    sample,
)
from tests.waiting import wait_until

ROLES = dict(PEOPLE)
READERS = {"operator", "analyst", "compliance", "admin"}
CONTENT = {"operator", "analyst", "admin"}
OPERATORS = {"operator", "admin"}


def matrix(allowed: set[str]) -> dict[str, str]:
    return {role: "allow" if role in allowed else "deny" for role in ROLES.values()}


ACCESS = {
    ("GET", "/messages/"): matrix(READERS),
    ("POST", "/messages/searches"): matrix(READERS),
    ("POST", "/messages/searches/<id:search_id>/delete"): matrix(READERS),
    ("GET", "/messages/<message_id>/"): matrix(READERS),
    ("GET", "/messages/<message_id>/deliveries"): matrix(READERS),
    # What the message holds: a content view, never for compliance.
    ("GET", "/messages/<message_id>/content"): matrix(CONTENT),
    ("POST", "/messages/<message_id>/deliveries/<id:delivery_id>/retry"): matrix(OPERATORS),
    ("POST", "/messages/<message_id>/reprocess"): matrix(OPERATORS),
    ("POST", "/messages/bulk"): matrix(OPERATORS),
    ("GET", "/messages/bulk/<job_id>/"): matrix(READERS),
    ("GET", "/messages/bulk/<job_id>/progress"): matrix(READERS),
}
NAME = "EVERYWOMAN"  # the held sample's patient: content, never on a page without a view


@pytest.fixture
def traffic(console) -> dict[str, str]:
    """Messages journaled and routed by the real pipeline, by control id: admissions
    and an update on two wards, lab results with their codes, a failed message."""
    engine = console.engine
    ids = {"A1": ingest(engine, adt("A1", "MRN1", "WARD1")),
           "A2": ingest(engine, adt("A2", "MRN2", "WARD2")),
           "A3": ingest(engine, adt("A3", "MRN1", "WARD2", event="A08")),
           "R1": ingest(engine, oru("R1", "MRN1", ["2345-7", "718-7"])),
           "R2": ingest(engine, oru("R2", "MRN2", ["718-7"]))}
    assert Pipeline(engine).run_once() == 5
    ids["F1"] = entry(engine, status="failed")[1]
    return ids


def shown(page: str) -> set[str]:
    """The control ids in the results table."""
    table = page.split('id="results"')[1].split("</table>")[0]
    return set(re.findall(r'<td class="control-id[^"]*">([^<]+)</td>', table)) - {"—"}


def audit(engine, *actions: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action.in_(actions))
                                    .order_by(AuditEvent.id)))


def set_delivery(engine, message_id: str, destination: str, **values) -> int:
    with engine.begin() as connection:
        journal_id = connection.scalar(select(JournalEntry.id).where(
            JournalEntry.message_id == message_id))
        if values:
            connection.execute(update(Delivery).where(
                Delivery.journal_id == journal_id, Delivery.destination == destination)
                .values(**values))
        return connection.scalar(select(Delivery.id).where(
            Delivery.journal_id == journal_id, Delivery.destination == destination))


# ---- who may do what ----------------------------------------------------------------

def test_access_covers_every_route_the_view_registers(console):
    rules = {(method, rule.rule) for rule in console.app.url_map.iter_rules()
             if rule.endpoint.startswith("messages.")
             for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert rules == set(ACCESS)


def test_each_role_is_let_in_or_refused_as_the_table_says(console):
    engine = console.engine
    journal_id, message_id = entry(engine, status="routed")
    delivery_id = delivery(engine, journal_id)
    job = console.app.extensions["switchboard"].message_bulk.start(
        "reprocess", [message_id], "why", "adam")
    for (method, rule), roles in ACCESS.items():
        path = (rule.replace("<message_id>", message_id).replace("<job_id>", job.id)
                .replace("<id:delivery_id>", str(delivery_id))
                .replace("<id:search_id>", "1"))
        for name, role in ROLES.items():
            browser = console.as_(name)
            response = browser.get(path) if method == "GET" else browser.post(path, {})
            if roles[role] == "deny":
                assert response.status_code == 403, (method, path, name)
            else:
                assert response.status_code not in (403, 500), (method, path, name)
                assert not response.headers.get("Location", "").startswith("/sign-in/")
        anonymous = console.anonymous()
        response = (anonymous.get(path) if method == "GET"
                    else anonymous.post(path, {"csrf_token": anonymous.csrf_token()}))
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/sign-in/")
    denials = audit(engine, "access.denied")
    assert {event.actor for event in denials} == {"carl", "cora", "abe", "rita", "anna"}
    assert {e.detail["path"] for e in denials if e.actor == "carl"} == {
        f"/messages/{message_id}/content", f"/messages/{message_id}/reprocess",
        f"/messages/{message_id}/deliveries/{delivery_id}/retry", "/messages/bulk"}
    viewed = audit(engine, "content.view")
    assert viewed and {event.actor for event in viewed} == {"olive", "anna", "adam"}


# ---- the search -----------------------------------------------------------------------

@pytest.mark.parametrize(("form", "expected"), [
    ({}, {"A1", "A2", "A3", "R1", "R2"}),
    ({"control_id": "A2"}, {"A2"}),
    ({"patient": "MRN1", "patient_authority": "RIVERSIDE"}, {"A1", "A3", "R1"}),
    ({"type": "ORU"}, {"R1", "R2"}),
    ({"type": "ADT", "event": "A08"}, {"A3"}),
    ({"source": "ehr-adt-feed", "type": "ADT"}, {"A1", "A2", "A3"}),
    ({"status": "failed"}, set()),  # F1 names no control id: its row reads "—"
    ({"destination": "lab-system"}, {"A1", "A2", "A3"}),
    ({"destination": "lab-system", "delivery_status": "failed"}, {"A2"}),
    ({"path": "OBX-3.1", "value": "718-7"}, {"R1", "R2"}),
    ({"path": "PV1-3.1", "value": "WARD2"}, {"A2", "A3"}),
    ({"path": "MSH-4", "value": "LABFAC"}, {"R1", "R2"}),
    ({"since": "{past}"}, {"A1", "A2", "A3", "R1", "R2"}),
    ({"until": "{past}"}, set()),
])
def test_each_filter_through_the_form_finds_its_messages(console, traffic, form, expected):
    set_delivery(console.engine, traffic["A2"], "lab-system", status="dead")
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    query = {name: value.replace("{past}", past) for name, value in form.items()}
    page = console.as_("carl").text("/messages/?" + urlencode(query))
    assert shown(page) == expected
    for name, value in query.items():  # the form shows what was searched for
        assert re.search(rf'name="{name}"[^>]*value="{re.escape(value)}"', page) or \
            f'<option value="{value}" selected>' in page, name


def test_a_failed_message_is_found_by_its_status(console, traffic):
    page = console.as_("olive").text("/messages/?status=failed")
    assert f'href="/messages/{traffic["F1"]}/?q=status%3Dfailed"' in page
    assert f'/messages/{traffic["A1"]}/' not in page


def test_the_dashboard_s_counts_lead_to_their_messages(console, traffic):
    set_delivery(console.engine, traffic["A1"], "lab-system", status="dead")
    browser = console.as_("olive")
    dashboard = browser.text("/")
    failed = unescape(re.search(
        r'href="(/messages/\?destination=lab-system&amp;delivery_status=failed)"',
        dashboard).group(1))
    assert shown(browser.text(failed)) == {"A1"}
    routed = unescape(re.search(
        r'href="(/messages/\?source=ehr-adt-feed&amp;status=routed)"', dashboard).group(1))
    assert shown(browser.text(routed)) == {"A1", "A2", "A3", "R1", "R2"}


@pytest.mark.parametrize(("query", "field", "words"), [
    ({"path": "OBX-3.1"}, "value", "Path and value go together."),
    ({"since": "yesterday"}, "since", "Since must be an ISO 8601 time with an offset. "
                                      "Give it a UTC offset"),
    ({"patient_authority": "RIVERSIDE"}, "patient_authority",
     "Patient_authority needs patient. Send the identifier as patient, with its authority."),
])
def test_a_search_that_cannot_run_says_why_beside_its_field(console, query, field, words):
    response = console.as_("olive").get("/messages/?" + urlencode(query))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'<div class="invalid-feedback d-block" id="{field}-error">{words}' in page
    assert f'aria-describedby="{field}-error"' in page


def test_results_sort_and_page_on_the_server(console, traffic, monkeypatch):
    monkeypatch.setattr("admin.console.messages.PER_PAGE", 2)
    browser = console.as_("olive")
    newest = browser.text("/messages/?type=ADT")
    assert shown(newest) == {"A3", "A2"} and "1–2 of 3" in newest
    assert 'href="/messages/?type=ADT&amp;page=2"' in newest
    assert shown(browser.text("/messages/?type=ADT&page=2")) == {"A1"}
    oldest = browser.text("/messages/?type=ADT&sort=received_at")
    assert shown(oldest) == {"A1", "A2"} and 'aria-sort="ascending"' in oldest
    assert 'href="/messages/?type=ADT"' in oldest  # back to newest first


# ---- saved searches -------------------------------------------------------------------

def test_a_search_is_saved_run_replaced_and_deleted(console, traffic):
    browser = console.as_("anna")
    saved = browser.post("/messages/searches", {"name": "Ward 2", "path": "PV1-3.1",
                                                "value": "WARD2"})
    assert saved.status_code == 303
    assert saved.headers["Location"] == "/messages/?path=PV1-3.1&value=WARD2"
    page = browser.text("/messages/")
    link = unescape(re.search(r'<a href="([^"]+)" class="text-truncate[^>]*>Ward 2</a>',
                              page).group(1))
    assert shown(browser.text(link)) == {"A2", "A3"}
    again = browser.post("/messages/searches", {"name": "Ward 2", "type": "ADT"})
    assert again.status_code == 409
    assert "You have a saved search named &#39;Ward 2&#39; already" in again.get_data(
        as_text=True) and 'id="save-replace"' in again.get_data(as_text=True)
    assert browser.post("/messages/searches", {"name": "Ward 2", "type": "ADT",
                                               "replace": "yes"}).status_code == 303
    [found] = console.app.extensions["switchboard"].saved_searches.list(as_("anna"))
    assert found["query"] == {"type": "ADT"}
    assert browser.post("/messages/searches", {"name": " "}).status_code == 400
    # Nobody else's to delete.
    assert console.as_("olive").post(f"/messages/searches/{found['id']}/delete"
                                     ).status_code == 404
    assert browser.post(f"/messages/searches/{found['id']}/delete").status_code == 303
    assert "None yet" in browser.text("/messages/")
    assert [e.action for e in audit(console.engine, "saved_search.save", "saved_search.replace",
                                    "saved_search.delete")] == [
        "saved_search.save", "saved_search.replace", "saved_search.delete"]


# ---- a message's page -----------------------------------------------------------------

def test_a_message_s_page_shows_what_happened_to_it(console):
    engine = console.engine
    message_id = ingest(engine, sample(HELD_SAMPLE))
    assert Pipeline(engine).run_once() == 1
    set_delivery(engine, message_id, "clinic-north", status="dead", attempts=5,
                 error_class="transport_error", last_error="connection refused")
    with engine.begin() as connection:
        journal_id = connection.scalar(select(JournalEntry.id).where(
            JournalEntry.message_id == message_id))
    dead = set_delivery(engine, message_id, "clinic-north")
    item_id = exception_item(engine, journal_id, dead)
    page = console.as_("carl").text(f"/messages/{message_id}/?q=type%3DORU")
    assert '<a href="/messages/?type=ORU">Back to the results</a>' in page
    timeline = page.split('id="timeline"')[1].split("</ol>")[0]
    assert "Received and journaled" in timeline and "Deliveries and tasks recorded" in timeline
    assert "(version 1)" in timeline
    rows = page.split('id="rows-fired"')[1].split("</table>")[0]
    assert "results/abnormal-results-held-for-nurse-review" in rows
    assert "Held for nurse-review" in rows
    deliveries = page.split('id="message-deliveries"')[1]
    assert "clinic-north" in deliveries and "connection refused" in deliveries
    assert "Failed: gave up" in deliveries and "transport_error" in deliveries
    assert "Held for review" in deliveries  # the EHR write-back
    assert re.search(r'href="/tasks/\d+">Task #\d+</a>: abnormal result review in nurse-review',
                     page)
    assert f'href="/exceptions/{item_id}/">Exception #{item_id}</a>' in page
    # Compliance reads identifiers and statuses: no content, nor a way to it, nor actions.
    assert NAME not in page and "/content" not in page and "Retry delivery" not in page
    assert "Your role sees this message's identifiers and statuses" in page
    assert audit(engine, "content.view") == []
    olive = console.as_("olive").text(f"/messages/{message_id}/")
    assert NAME not in olive and "Retry delivery" in olive and "Reprocess this message" in olive
    assert f'/messages/{message_id}/content?view=tree' in olive
    assert audit(engine, "content.view") == []  # the page itself shows no content
    assert console.as_("olive").get("/messages/nope/").status_code == 404


def test_a_message_not_routed_yet_says_so(console):
    _, message_id = entry(console.engine, status="received")
    page = console.as_("anna").text(f"/messages/{message_id}/")
    assert "Its route rows cannot be shown: it has not been routed." in page
    assert "No deliveries yet: it waits to be routed." in page


# ---- content ----------------------------------------------------------------------------

@pytest.mark.parametrize(("view", "seen"), [
    ("raw", "PID|||555-44-4444||EVERYWOMAN^EVE^E"),
    ("tree", 'title="PID-5.1 (Patient Name, Family Name)">EVERYWOMAN</span>'),
    ("canonical", "EVERYWOMAN"),
    ("routing", "saw <strong>H</strong>"),
    ("payload&destination=ehr-fhir", "EVERYWOMAN"),
])
def test_each_content_view_is_audited_and_refused_to_compliance(console, view, seen):
    engine = console.engine
    message_id = ingest(engine, sample(HELD_SAMPLE))
    assert Pipeline(engine).run_once() == 1
    url = f"/messages/{message_id}/content?view={view}"
    fragment = console.as_("anna").get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    text = fragment.get_data(as_text=True)
    assert seen in text and "<html" not in text
    [viewed] = audit(engine, "content.view")
    name = view.split("&")[0]
    assert (viewed.actor, viewed.target_type, viewed.target_id) == (
        "anna", f"message.{name}", message_id)
    assert viewed.detail["path"] == f"/messages/{message_id}/content"
    if name == "payload":
        assert viewed.detail["destination"] == "ehr-fhir"
    page = console.as_("olive").text(url)  # without htmx: a page of its own
    assert "<html" in page and seen in page and "Back to the message" in page
    refused = console.as_("carl").get(url)
    assert refused.status_code == 403 and NAME not in refused.get_data(as_text=True)
    assert len(audit(engine, "content.view")) == 2
    [denied] = audit(engine, "access.denied")
    assert (denied.actor, denied.target_id) == ("carl", "content.view")


def test_a_value_of_the_parsed_message_adds_itself_to_the_search(console, traffic):
    url = f"/messages/{traffic['R1']}/content?view=tree&q=" + urlencode({"q": "type=ORU"})[2:]
    tree = console.as_("olive").text(url)
    assert 'href="/messages/?type=ORU&amp;path=OBX-3.1&amp;value=718-7"' in tree
    assert 'href="/messages/?type=ORU&amp;patient=MRN1&amp;patient_authority=RIVERSIDE"' in tree
    assert 'href="/messages/?type=ORU&amp;control_id=R1"' in tree
    assert 'title="OBX[2]-3.1 (Observation Identifier, Identifier): search for messages' in tree
    # A value at a path that is not indexed is not a search.
    assert '>Result 1</span>' in tree


def test_content_asks_for_a_view_it_knows(console, traffic):
    browser = console.as_("olive")
    assert browser.get(f"/messages/{traffic['R1']}/content?view=secret").status_code == 400
    assert browser.get(f"/messages/{traffic['R1']}/content?view=payload").status_code == 400
    assert browser.get("/messages/nope/content?view=raw").status_code == 404
    assert audit(console.engine, "content.view") == []


# ---- retry and reprocess -------------------------------------------------------------

def test_a_failed_delivery_is_retried_from_its_message(console, traffic):
    engine = console.engine
    dead = set_delivery(engine, traffic["A1"], "lab-system", status="dead",
                        last_error="connection refused")
    journal_id = _journal_id(engine, traffic["A1"])
    item_id = exception_item(engine, journal_id, dead)
    url = f"/messages/{traffic['A1']}/deliveries/{dead}/retry"
    # The exception's page leads to its message.
    assert f'href="/messages/{traffic["A1"]}/"' in console.as_("carl").text(
        f"/exceptions/{item_id}/")
    assert console.as_("anna").post(url).status_code == 403
    olive = console.as_("olive")
    response = olive.post(url, {"q": "type=ADT"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/messages/{traffic['A1']}/?q=type%3DADT"
    with Session(engine) as session:
        assert session.get(Delivery, dead).status == "pending"
        assert session.get(ExceptionItem, item_id).status == "retried"
    [retried] = audit(engine, "exception.retry")
    assert (retried.actor, retried.target_id) == ("olive", str(item_id))
    page = olive.text(response.headers["Location"])
    assert "Retrying the delivery to lab-system" in page
    polled = f'hx-get="/messages/{traffic["A1"]}/deliveries?q=type%3DADT"'
    assert f'{polled} hx-trigger="every 2s"' in page
    again = olive.post(url)  # its exception is settled now
    assert again.status_code == 409
    assert "has no open exception to retry" in again.get_data(as_text=True)


def test_a_message_is_reprocessed_from_its_page(console, traffic, monkeypatch):
    browser = console.as_("olive")
    assert console.as_("anna").post(f"/messages/{traffic['A1']}/reprocess").status_code == 403
    response = browser.post(f"/messages/{traffic['A1']}/reprocess",
                            {"reason": "checking the routes"})
    assert response.status_code == 303
    assert ("Reprocessed under version 1: nothing was missing" in
            browser.text(response.headers["Location"]))
    refused = browser.post(f"/messages/{traffic['F1']}/reprocess")  # its bytes are no HL7
    assert refused.status_code == 303  # a failed message goes back to the pipeline
    assert "Sent back to be routed" in browser.text(refused.headers["Location"])
    waiting = browser.post(f"/messages/{traffic['F1']}/reprocess")
    assert waiting.status_code == 409
    assert 'id="reprocess-error">Message' in waiting.get_data(as_text=True)
    assert "is waiting to be routed already" in waiting.get_data(as_text=True)
    assert [e.target_id for e in audit(console.engine, "message.reprocess")] == [
        traffic["A1"], traffic["F1"]]


def _journal_id(engine, message_id: str) -> int:
    with Session(engine) as session:
        return session.scalar(select(JournalEntry.id).where(
            JournalEntry.message_id == message_id))


# ---- bulk ------------------------------------------------------------------------------

def finished(browser, job: str) -> str:
    def ended() -> str | None:
        page = browser.text(f"/messages/bulk/{job}/progress")
        return page if 'data-finished="yes"' in page else None

    return wait_until(ended, what="the bulk action")


def test_a_bulk_action_needs_messages_a_reason_and_a_confirmation(console, traffic):
    browser = console.as_("olive")
    chosen = [traffic["A1"], traffic["A2"]]
    for form, said in (({"action": "reprocess", "message": chosen}, "Say why these messages"),
                       ({"action": "reprocess", "reason": "x"}, "Tick the messages"),
                       ({"action": "retry", "message": chosen, "reason": "x"},
                        "None of the chosen messages has a failed delivery")):
        response = browser.post("/messages/bulk", form)
        assert response.status_code == 400
        assert said in response.get_data(as_text=True)
    confirm = browser.post("/messages/bulk", {"action": "reprocess", "message": chosen,
                                              "reason": "the second sink was missed"})
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Reprocess messages: 2 messages?" in text
    assert "Yes, reprocess them" in text
    assert audit(console.engine, "message.bulk", "message.reprocess") == []
    assert console.as_("anna").post("/messages/bulk", {"action": "reprocess"}
                                    ).status_code == 403


def test_a_bulk_reprocess_runs_and_its_progress_reaches_the_end(console, traffic):
    browser = console.as_("olive")
    chosen = [traffic["A1"], traffic["A2"], traffic["F1"]]
    response = browser.post("/messages/bulk", {
        "action": "reprocess", "message": chosen, "reason": "the routes were fixed",
        "confirmed": "yes", "q": "type=ADT"})
    assert response.status_code == 303
    job = re.search(r"/messages/bulk/([0-9a-f]{32})/", response.headers["Location"]).group(1)
    page = browser.text(response.headers["Location"])
    assert "Reprocess messages in bulk" in page and 'href="/messages/?type=ADT"' in page
    done = finished(browser, job)
    assert 'aria-valuenow="100"' in done and "hx-get" not in done
    assert "Done: 3 of 3 reprocessed." in done
    assert [e.target_id for e in audit(console.engine, "message.reprocess")] == chosen


def test_a_bulk_retry_retries_the_failed_deliveries_of_the_messages(console, traffic):
    engine = console.engine
    items = []
    for name in ("A1", "A2"):
        dead = set_delivery(engine, traffic[name], "lab-system", status="dead")
        items.append(exception_item(engine, _journal_id(engine, traffic[name]), dead))
    busy = set_delivery(engine, traffic["A3"], "lab-system", status="dead")
    busy_item = exception_item(engine, _journal_id(engine, traffic["A3"]), busy)
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id == busy).values(
            status="retrying"))
    browser = console.as_("olive")
    chosen = [traffic["A1"], traffic["A2"], traffic["R1"]]
    confirm = browser.post("/messages/bulk", {"action": "retry", "message": chosen,
                                              "reason": "the lab is back"})
    assert "retry 2 failed deliveries" in confirm.get_data(as_text=True)
    response = browser.post("/messages/bulk", {"action": "retry", "message": chosen,
                                               "reason": "the lab is back",
                                               "confirmed": "yes"})
    job = re.search(r"/messages/bulk/([0-9a-f]{32})/", response.headers["Location"]).group(1)
    done = finished(browser, job)
    assert "Done: 2 of 2 retried." in done
    assert [int(e.target_id) for e in audit(engine, "exception.retry")] == items
    with Session(engine) as session:
        assert session.get(ExceptionItem, busy_item).status == "open"


def test_each_listed_message_says_where_its_deliveries_stand(console, traffic):
    """Found in the operators' check: every row read "Routed" although its delivery to
    the bed board had been given up on; checking a fix took a page per message."""
    set_delivery(console.engine, traffic["A2"], "lab-system", status="dead")
    page = console.as_("olive").text("/messages/?destination=lab-system")
    rows = {control: row for row in page.split("<tr")[1:]
            for control in ("A1", "A2", "A3") if f">{control}<" in row}
    assert 'class="badge badge-danger delivery-badge mr-1"' in rows["A2"]
    assert "lab-system: Failed: gave up" in rows["A2"]
    assert "lab-system: Failed" not in rows["A1"]


def test_a_delivery_held_behind_a_failure_says_so_in_the_list(console):
    """Found in the operators' second check: the bed board's deliveries held behind its
    patients' failed ones read "Waiting to be sent", as if all were well."""
    from tests.queue_rows import held_behind_failure

    held_behind_failure(console.engine)
    page = console.as_("olive").text("/messages/?destination=clinic-north")
    assert page.count("clinic-north: Held behind a failure") == 1
    assert page.count("clinic-north: Failed: gave up") == 1
