"""The console's exception queue over Flask's test client, on SQLite and PostgreSQL:
the groups and their counts, filters, sorting and pages; an item's page; every action
and its refusals; edit and reprocess as an audited content view compliance never gets;
bulk actions with a reason, whose progress another web process can show."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.exception_signature import signature_of
from engine.journal import now_utc
from engine.security.audit import AuditLog
from engine.store.models import AuditEvent, Delivery, ExceptionItem, JournalEntry
from tests.admin.console.console_client import Console, console_app
from tests.engine.test_exception_groups import raised
from tests.engine.test_exception_queue import held_chain
from tests.queue_rows import PEOPLE, delivery, entry, exception_item
from tests.waiting import wait_until

ROLES = {name: role for name, role in PEOPLE.items()}
READERS = {"operator", "analyst", "compliance", "admin"}
OPERATORS = {"operator", "admin"}
EDITORS = {"operator", "analyst", "admin"}


def matrix(allowed: set[str]) -> dict[str, str]:
    return {role: "allow" if role in allowed else "deny" for role in ROLES.values()}


ACCESS = {
    ("GET", "/exceptions/"): matrix(READERS),
    ("GET", "/exceptions/<id:item_id>/"): matrix(READERS),
    ("POST", "/exceptions/<id:item_id>/assign"): matrix(OPERATORS),
    ("POST", "/exceptions/<id:item_id>/resolve"): matrix(OPERATORS),
    ("POST", "/exceptions/<id:item_id>/retry"): matrix(OPERATORS),
    ("GET", "/exceptions/retry-all"): matrix(OPERATORS),
    ("POST", "/exceptions/<id:item_id>/skip"): matrix(OPERATORS),
    # The message itself: a content view, never for compliance.
    ("GET", "/exceptions/<id:item_id>/edit"): matrix(EDITORS),
    ("POST", "/exceptions/<id:item_id>/diff"): matrix(EDITORS),
    ("POST", "/exceptions/<id:item_id>/reprocess"): matrix(EDITORS),
    ("POST", "/exceptions/bulk"): matrix(OPERATORS),
    ("GET", "/exceptions/bulk/<job_id>/"): matrix(READERS),
    ("GET", "/exceptions/bulk/<job_id>/progress"): matrix(READERS),
}
REFUSED = "delivery to clinic-north failed after 5 attempts: connection refused"


def dead_item(engine, body: str = '{"a": 1}') -> int:
    journal_id, _ = entry(engine)
    return exception_item(engine, journal_id, delivery(engine, journal_id, body=body))


def audit(engine, *actions: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action.in_(actions))
                                    .order_by(AuditEvent.id)))


def item(engine, item_id: int) -> ExceptionItem:
    with Session(engine) as session:
        found = session.get(ExceptionItem, item_id)
        assert found is not None
        return found


def job_of(response) -> str:
    found = re.fullmatch(r"/exceptions/bulk/([0-9a-f]{32})/", response.headers["Location"])
    assert found, response.headers.get("Location")
    return found.group(1)


def finished(browser, job: str) -> str:
    """The job's progress fragment once it says the job has ended."""
    def ended() -> str | None:
        page = browser.text(f"/exceptions/bulk/{job}/progress")
        return page if 'data-finished="yes"' in page else None

    return wait_until(ended, what="the bulk action")


def items_table(page: str) -> str:
    return page.split('id="items"')[1].split("</table>")[0]


# ---- who may do what ----------------------------------------------------------------

def test_access_covers_every_route_the_view_registers(console):
    rules = {(method, rule.rule) for rule in console.app.url_map.iter_rules()
             if rule.endpoint.startswith("exceptions.")
             for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert rules == set(ACCESS)


def test_each_role_is_let_in_or_refused_as_the_table_says(console):
    item_id = dead_item(console.engine)
    job = console.app.extensions["switchboard"].bulk.start("retry", [item_id], "why",
                                                          "adam")
    for (method, rule), roles in ACCESS.items():
        path = rule.replace("<id:item_id>", str(item_id)).replace("<job_id>", job.id)
        for name, role in ROLES.items():
            browser = console.as_(name)
            response = browser.get(path) if method == "GET" else browser.post(path, {})
            if roles[role] == "deny":
                assert response.status_code == 403, (method, path, name)
            else:
                assert response.status_code != 403, (method, path, name)
                assert not response.headers.get("Location", "").startswith("/sign-in/")
        anonymous = console.anonymous()
        response = (anonymous.get(path) if method == "GET"
                    else anonymous.post(path, {"csrf_token": anonymous.csrf_token()}))
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/sign-in/")
    denials = audit(console.engine, "access.denied")
    assert {event.actor for event in denials} == {"anna", "carl", "cora", "abe", "rita"}
    acted = audit(console.engine, "exception.assign", "exception.resolve", "exception.retry",
                  "exception.skip", "exception.reprocess", "content.view")
    assert {event.actor for event in acted} <= {"olive", "anna", "adam"}


# ---- the queue ------------------------------------------------------------------------

def test_the_queue_groups_waiting_items_by_signature_with_counts(console):
    engine = console.engine
    for minute in range(3):
        raised(engine, REFUSED.replace("5", str(minute + 2)), minute=minute)
    raised(engine, "delivery to clinic-north failed after 5 attempts: HTTP 503", minute=4)
    raised(engine, "no route row matched this message: it goes nowhere", "ehr-adt-feed",
           "unrouted", minute=5)
    raised(engine, REFUSED, minute=6, status="resolved")
    page = console.as_("carl").text("/exceptions/")
    groups = page.split('id="groups"')[1].split("</table>")[0]
    # A group reads as its latest item, not as its signature's pattern.
    assert groups.index("failed after 4 attempts: connection refused") < groups.index(
        "HTTP 503")
    assert "#" not in groups.split("<tbody>")[1].replace("#groups", "")
    group = signature_of("clinic-north", "transport_error", REFUSED).key
    assert f'href="/exceptions/?signature={group}"' in groups
    assert ">3</a>" in groups and "3 groups" in page
    assert 'type="checkbox"' not in page and "Act on many items" not in page  # compliance
    chosen = console.as_("olive").text(f"/exceptions/?signature={group}")
    assert "Showing one group" in chosen and "3 waiting" in chosen
    assert chosen.count('class="item-choice"') == 3
    assert "Every waiting item in this group (3)" in chosen


def test_the_queue_filters_sorts_and_pages_on_the_server(console):
    engine = console.engine
    for minute in range(30):
        raised(engine, f"late result {minute}", "lab-system", "late", minute=minute)
    first = raised(engine, REFUSED, minute=40, status="assigned", assignee="olive",
                   escalate_in=5)
    raised(engine, REFUSED, minute=41, status="resolved")
    browser = console.as_("olive")
    page = browser.text("/exceptions/")
    assert "Showing 1–25 of 31 items" in page
    assert 'href="/exceptions/?page=2"' in page
    second = browser.text("/exceptions/?page=2")
    assert second.count('class="item-choice"') == 6
    dashboard = browser.text("/exceptions/?connection=clinic-north")  # the dashboard's link
    assert "1 item<" in dashboard and f"#{first}<" in dashboard
    assert 'aria-sort="descending"' in dashboard  # newest first
    assert "1 item<" in browser.text("/exceptions/?assignee=olive")
    assert "30 items" in browser.text("/exceptions/?error_class=late")
    assert "32 items" in browser.text("/exceptions/?status=any")
    assert "1 item<" in browser.text("/exceptions/?status=resolved")
    by_escalation = items_table(browser.text("/exceptions/?sort=escalate_at"))
    assert by_escalation.index(f"#{first}<") < by_escalation.index("late result")
    assert "data-due=" in by_escalation
    oldest = items_table(browser.text("/exceptions/?sort=created_at"))
    assert oldest.index("late result 0\n") < oldest.index("late result 1\n")
    response = browser.get("/exceptions/?sort=summary")
    assert response.status_code == 400 and "Sort by" in response.get_data(as_text=True)
    assert browser.get("/exceptions/?signature=nope").status_code == 400


# ---- one item and its actions ---------------------------------------------------------

def test_an_item_shows_its_owner_recovery_procedure_and_escalation(console):
    item_id = dead_item(console.engine)
    with console.engine.begin() as connection:
        connection.execute(update(ExceptionItem).where(ExceptionItem.id == item_id).values(
            escalate_at=now_utc() + timedelta(hours=4), escalate_to="admin"))
    page = console.as_("carl").text(f"/exceptions/{item_id}/")
    assert 'id="owner-role">operators<' in page
    assert 'id="recovery-procedure">Call them<' in page
    assert "to admin, <span data-due=" in page
    assert "Your role may read the queue but not act on it." in page
    assert 'id="retry"' not in page and 'id="edit"' not in page
    analyst = console.as_("anna").text(f"/exceptions/{item_id}/")
    assert 'id="edit"' in analyst and 'id="retry"' not in analyst
    operator = console.as_("olive").text(f"/exceptions/{item_id}/")
    assert all(f'action="/exceptions/{item_id}/{name}"' in operator
               for name in ("retry", "assign", "resolve"))
    assert f'action="/exceptions/{item_id}/skip"' not in operator  # holds nothing back
    assert console.as_("olive").get("/exceptions/999999/").status_code == 404


def test_assign_and_resolve_and_their_refusals(console):
    item_id = dead_item(console.engine)
    browser = console.as_("olive")
    response = browser.post(f"/exceptions/{item_id}/assign", {"assignee": "cora"})
    assert response.status_code == 400
    assert "may not act on this item" in response.get_data(as_text=True)
    response = browser.post(f"/exceptions/{item_id}/assign", {"assignee": "anna"})
    assert response.status_code == 302
    assert f"Exception {item_id} is assigned to anna." in browser.text(f"/exceptions/{item_id}/")
    response = browser.post(f"/exceptions/{item_id}/resolve", {"reason": "  "})
    assert response.status_code == 400
    assert "A resolution needs a reason" in response.get_data(as_text=True)
    response = browser.post(f"/exceptions/{item_id}/resolve",
                            {"reason": "the clinic keyed it in"})
    assert response.status_code == 302
    page = browser.text(f"/exceptions/{item_id}/")
    assert "the clinic keyed it in" in page and "Nothing is left to do: it is resolved" in page
    response = browser.post(f"/exceptions/{item_id}/resolve", {"reason": "again"})
    assert response.status_code == 409 and "no longer open" in response.get_data(as_text=True)
    assert [e.action for e in audit(console.engine, "exception.assign",
                                    "exception.resolve")] == [
        "exception.assign", "exception.resolve"]


def test_retry_and_its_refusal(console):
    item_id = dead_item(console.engine)
    browser = console.as_("olive")
    assert browser.post(f"/exceptions/{item_id}/retry",
                        {"reason": "clinic-north answers again"}).status_code == 302
    assert "is retried" in browser.text(f"/exceptions/{item_id}/")
    journal_id, _ = entry(console.engine, status="routed")
    routed = exception_item(console.engine, journal_id)
    response = browser.post(f"/exceptions/{routed}/retry", {"reason": "try again"})
    assert response.status_code == 409
    assert "routing it again would send it twice" in response.get_data(as_text=True)
    [event] = audit(console.engine, "exception.retry")
    assert (event.actor, event.target_id) == ("olive", str(item_id))


def test_skip_lets_the_chain_go_on_for_a_reason(console):
    item_id, _, _ = held_chain(console.engine)
    browser = console.as_("olive")
    page = browser.text(f"/exceptions/{item_id}/")
    assert "2 deliveries" in page and f'action="/exceptions/{item_id}/skip"' in page
    response = browser.post(f"/exceptions/{item_id}/skip", {"reason": ""})
    assert response.status_code == 400 and "A skip needs a reason" in response.get_data(
        as_text=True)
    assert browser.post(f"/exceptions/{item_id}/skip",
                        {"reason": "keyed in by the clinic"}).status_code == 302
    assert item(console.engine, item_id).status == "skipped"
    assert len(audit(console.engine, "exception.skip")) == 1


# ---- edit and reprocess ---------------------------------------------------------------

def test_edit_shows_the_body_as_an_audited_content_view_and_reprocesses_it(console):
    item_id = dead_item(console.engine, body='{"name":"SECRET-NAME"}')
    browser = console.as_("anna")
    page = browser.text(f"/exceptions/{item_id}/edit")
    assert "SECRET-NAME" in page and 'name="kind" value="json"' in page
    [view] = audit(console.engine, "content.view")
    assert (view.actor, view.target_type, view.detail["exception_id"]) == (
        "anna", "delivery", item_id)
    original = '{\n  "name": "SECRET-NAME"\n}'
    edit = '{\n  "name": "SECRET-NAMES"\n}'
    diff = browser.post(f"/exceptions/{item_id}/diff", {"original": original, "body": edit},
                        headers={"HX-Request": "true"}).get_data(as_text=True)
    assert '<span class="del">-  &#34;name&#34;: &#34;SECRET-NAME&#34;</span>' in diff
    assert '<span class="add">+  &#34;name&#34;: &#34;SECRET-NAMES&#34;</span>' in diff
    assert len(audit(console.engine, "content.view")) == 1  # the diff reads nothing
    bad = browser.post(f"/exceptions/{item_id}/reprocess",
                       {"original": original, "body": "{not json", "kind": "json"})
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "The edited body is not JSON" in text and "{not json</textarea>" in text
    response = browser.post(f"/exceptions/{item_id}/reprocess",
                            {"original": original, "body": edit.replace("\n", "\r\n"),
                             "kind": "json"})
    assert response.status_code == 302
    assert "the edited copy is delivery" in browser.text(f"/exceptions/{item_id}/")
    with Session(console.engine) as session:
        bodies = session.scalars(select(Delivery.body).order_by(Delivery.id)).all()
    assert bodies[-1] == edit
    assert len(audit(console.engine, "exception.reprocess")) == 1


def test_compliance_never_sees_the_message(console):
    item_id = dead_item(console.engine, body='{"name":"SECRET-NAME"}')
    browser = console.as_("carl")
    for method, path in (("GET", "edit"), ("POST", "diff"), ("POST", "reprocess")):
        url = f"/exceptions/{item_id}/{path}"
        response = browser.get(url) if method == "GET" else browser.post(
            url, {"original": "x", "body": "y"})
        assert response.status_code == 403
        assert "SECRET-NAME" not in response.get_data(as_text=True)
    assert audit(console.engine, "content.view") == []
    assert [e.target_id for e in audit(console.engine, "access.denied")] == [
        "content.view"] * 3


def test_an_hl7_message_is_edited_a_segment_a_line(console):
    journal_id, _ = entry(console.engine, status="failed",
                          raw=b"MSH|^~\\&|EHR|N|||20260101||ADT^A08|C1|P|2.5\rPID|1||9\r")
    item_id = exception_item(console.engine, journal_id)
    page = console.as_("olive").text(f"/exceptions/{item_id}/edit")
    assert "ADT^A08|C1|P|2.5\nPID|1||9</textarea>" in page
    assert "one HL7 segment a line" in page
    settled = dead_item(console.engine)
    console.as_("olive").post(f"/exceptions/{settled}/resolve", {"reason": "done"})
    response = console.as_("olive").get(f"/exceptions/{settled}/edit")
    assert response.status_code == 409 and "cannot be reprocessed" in response.get_data(
        as_text=True)


# ---- bulk -----------------------------------------------------------------------------

def test_a_bulk_action_needs_a_reason_and_a_confirmation(console):
    items = [dead_item(console.engine) for _ in range(3)]
    browser = console.as_("olive")
    response = browser.post("/exceptions/bulk", {"action": "retry", "item": items,
                                                 "reason": ""})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Say why these items may all be handled this way." in text
    assert all(re.search(rf'id="choose-{i}"\s+checked>', text) for i in items)  # kept
    response = browser.post("/exceptions/bulk", {"action": "retry", "reason": "back up"})
    assert "Tick the items to act on" in response.get_data(as_text=True)
    confirm = browser.post("/exceptions/bulk", {"action": "retry", "item": items,
                                                "reason": "clinic-north is back up"})
    assert confirm.status_code == 200
    text = confirm.get_data(as_text=True)
    assert "Retry 3 exceptions?" in text and "Yes, retry 3 items" in text
    assert audit(console.engine, "exception.bulk") == []  # nothing until confirmed


def test_a_confirmed_bulk_retry_runs_and_its_progress_reaches_the_end(console):
    engine = console.engine
    items = [dead_item(engine) for _ in range(3)]
    busy = dead_item(engine)
    busy_delivery = item(engine, busy).delivery_id
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id == busy_delivery)
                           .values(status="retrying"))
    browser = console.as_("olive")
    response = browser.post("/exceptions/bulk", {"action": "retry", "item": [*items, busy],
                                                 "reason": "clinic-north is back up",
                                                 "confirmed": "yes"})
    assert response.status_code == 302
    job = job_of(response)
    assert "Retry exceptions in bulk" in browser.text(f"/exceptions/bulk/{job}/")
    done = finished(browser, job)
    assert 'aria-valuenow="100"' in done and "hx-get" not in done
    assert "Done: 3 of 4 retried, 1 left as they were." in done
    assert f'href="/exceptions/{busy}/"' in done and "the outbox still has it" in done
    retried = audit(engine, "exception.retry")
    assert [int(e.target_id) for e in retried] == items
    assert {e.detail["bulk"] for e in retried} == {job}
    assert item(engine, items[0]).detail["bulk"]["reason"] == "clinic-north is back up"
    assert AuditLog(engine).verify() == []
    # Another web process on the same store shows the same progress.
    elsewhere = console_app(engine)
    try:
        page = Console(elsewhere, engine, console.tokens).as_("carl").text(
            f"/exceptions/bulk/{job}/")
        assert "Done: 3 of 4 retried" in page and 'aria-valuenow="100"' in page
    finally:
        elsewhere.extensions["switchboard"].close()


def test_a_running_job_polls_for_its_progress_and_an_ended_one_stops(console):
    items = [dead_item(console.engine) for _ in range(2)]
    bulk = console.app.extensions["switchboard"].bulk
    job = bulk.start("retry", items, "clinic-north is back up", "olive")  # not run yet
    browser = console.as_("anna")
    page = browser.text(f"/exceptions/bulk/{job.id}/")
    assert f'hx-get="/exceptions/bulk/{job.id}/progress" hx-trigger="every 1s"' in page
    assert 'aria-valuenow="0"' in page and "0 of 2 handled so far" in page
    bulk.run(job)
    ended = browser.text(f"/exceptions/bulk/{job.id}/progress")
    assert "hx-trigger" not in ended and "Done: 2 of 2 retried." in ended
    assert "Retried means sent again, not yet arrived" in ended


def test_a_whole_group_is_resolved_in_bulk(console):
    engine = console.engine
    group = [dead_item(engine) for _ in range(3)]
    other = raised(engine, "something else 1")
    browser = console.as_("olive")
    signature = signature_of("clinic-north", "transport_error", REFUSED).key
    confirm = browser.post("/exceptions/bulk", {
        "action": "resolve", "scope": "group", "signature": signature,
        "reason": "the clinic re-sent them all"}).get_data(as_text=True)
    assert "Resolve 3 exceptions?" in confirm
    assert all(f'name="item" value="{i}"' in confirm for i in group)
    response = browser.post("/exceptions/bulk", {
        "action": "resolve", "item": group, "reason": "the clinic re-sent them all",
        "confirmed": "yes"})
    assert "Done: 3 of 3 resolved." in finished(browser, job_of(response))
    assert {item(engine, i).status for i in group} == {"resolved"}
    assert item(engine, other).status == "open"


def test_bulk_is_for_operators_and_checks_the_action_it_is_asked_for(console):
    item_id = dead_item(console.engine)
    for name in ("anna", "carl"):
        response = console.as_(name).post("/exceptions/bulk", {
            "action": "retry", "item": [item_id], "reason": "x", "confirmed": "yes"})
        assert response.status_code == 403
    browser = console.as_("olive")
    response = browser.post("/exceptions/bulk", {"action": "assign", "item": [item_id],
                                                 "reason": "x", "confirmed": "yes"})
    assert response.status_code == 400
    assert "Choose who to assign the items to." in response.get_data(as_text=True)
    response = browser.post("/exceptions/bulk", {"action": "assign", "item": [item_id],
                                                 "reason": "x", "assign_to": "cora",
                                                 "confirmed": "yes"})
    assert response.status_code == 400 and "may not act" in response.get_data(as_text=True)
    assert browser.get("/exceptions/bulk/" + "0" * 32 + "/").status_code == 404
    assert browser.get("/exceptions/bulk/not-a-job/").status_code == 404
    assert item(console.engine, item_id).status == "open"


# ---- an operator recovering a connection (the bed board usability check) -------------

def waiting_for(engine, count: int) -> list[int]:
    """``count`` dead letters to clinic-north, each raised after the last."""
    return [dead_item(engine) for _ in range(count)]


def test_retry_all_for_a_connection_goes_the_bulk_way_oldest_first(console):
    """"Retry the dead letters in order": filtered to one connection, the list offers
    to retry every item waiting for it, which asks why, confirms, and retries them
    oldest first, whatever order they are listed or ticked in."""
    engine = console.engine
    items = waiting_for(engine, 3)
    raised(engine, "delivery to lab-system failed after 8 attempts: HTTP 503", "lab-system")
    browser = console.as_("olive")
    page = browser.text("/exceptions/?connection=clinic-north")
    assert ("Retry all 3 open for North Clinic results inbox, oldest first</a>" in page)
    assert 'href="/exceptions/retry-all?connection=clinic-north"' in page
    group = signature_of("clinic-north", "transport_error", REFUSED).key
    everything = browser.text("/exceptions/")
    assert f'href="/exceptions/retry-all?signature={group}"' in everything  # a group's row
    assert 'id="retry-all"' not in everything  # the list is not filtered to a connection
    assert "Retry all" not in console.as_("anna").text("/exceptions/?connection=clinic-north")
    asked = browser.text("/exceptions/retry-all?connection=clinic-north")
    assert "Retry all 3 open for North Clinic results inbox, oldest first" in asked
    assert "They are retried oldest first, so each patient's messages arrive in order; " \
        "what waits behind each of them for the same patient follows once it goes." in asked
    assert 'name="scope" value="all"' in asked
    form = {"action": "retry", "scope": "all", "connection": "clinic-north"}
    response = browser.post("/exceptions/bulk", {**form, "reason": " "})
    assert response.status_code == 400
    assert "Say why these items may all be handled this way." in response.get_data(
        as_text=True)
    confirm = browser.post("/exceptions/bulk", {**form, "reason": "the inbox is back"})
    text = confirm.get_data(as_text=True)
    assert "Retry 3 exceptions?" in text and "every item that waits now for North" in text
    assert "They are retried oldest first, so each patient's messages arrive in order;" in text
    assert [int(i) for i in re.findall(r'name="item" value="(\d+)"', text)] == items
    response = browser.post("/exceptions/bulk", {
        "action": "retry", "item": list(reversed(items)), "reason": "the inbox is back",
        "confirmed": "yes"})
    assert "Done: 3 of 3 retried." in finished(browser, job_of(response))
    assert [int(e.target_id) for e in audit(engine, "exception.retry")] == items
    unfiltered = browser.get("/exceptions/retry-all")  # nothing chosen: back to the queue
    assert (unfiltered.status_code, unfiltered.headers["Location"]) == (302, "/exceptions/")


def test_ticked_items_are_confirmed_in_the_order_they_will_be_retried(console):
    items = waiting_for(console.engine, 3)
    confirm = console.as_("olive").post("/exceptions/bulk", {
        "action": "retry", "item": [items[2], items[0], items[1]], "reason": "back up"})
    text = confirm.get_data(as_text=True)
    assert [int(i) for i in re.findall(r'name="item" value="(\d+)"', text)] == items
    assert 'id="oldest-first"' in text


def test_a_single_retry_asks_why_and_the_item_says_who_when_and_why(console):
    engine = console.engine
    item_id = dead_item(engine)
    browser = console.as_("olive")
    page = browser.text(f"/exceptions/{item_id}/")
    assert 'id="retry-reason" name="reason"' in page
    response = browser.post(f"/exceptions/{item_id}/retry", {"reason": ""})
    assert response.status_code == 400
    assert "A retry needs a reason" in response.get_data(as_text=True)
    assert item(engine, item_id).status == "open"
    response = browser.post(f"/exceptions/{item_id}/retry",
                            {"reason": "the inbox answers again"})
    assert response.status_code == 302
    page = browser.text(f"/exceptions/{item_id}/")
    assert "sent again. See below where it is now." in page
    assert "on its way again" not in page  # it may be delivered, or failing, already
    assert re.search(r'id="retried">by olive, \d{4}-\d\d-\d\d [\d:]+ UTC: “the inbox answers '
                     r'again”', page)
    assert 'id="attempts-before">5 failed attempts before the retry<' in page
    assert "pending after 0 attempts since the retry" in page
    [event] = audit(engine, "exception.retry")
    assert event.detail["attempts_before"] == 5 and "inbox" not in str(event.detail)


def test_what_is_held_back_is_counted_in_words_and_each_one_linked(console):
    engine = console.engine
    item_id, _, behind = held_chain(engine)
    with Session(engine) as session:
        journals = [session.get(Delivery, d).journal_id for d in behind]
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id == behind[0])
                           .values(status="cancelled"))
        connection.execute(update(JournalEntry).where(JournalEntry.id == journals[1])
                           .values(control_id="ADT-0042"))
    page = console.as_("olive").text(f"/exceptions/{item_id}/")
    held = page.split('id="waiting-behind"')[1].split("</dd>")[0]
    assert "1 delivery for the same patient waits behind it, in order" in held
    with Session(engine) as session:
        message_id = session.get(JournalEntry, journals[1]).message_id
    assert f'<a href="/messages/{message_id}/">ADT-0042</a>' in held


def test_an_item_names_its_connections_owners_and_pager_beside_the_procedure(console):
    engine = console.engine
    journal_id, _ = entry(engine)
    bed = exception_item(engine, journal_id, delivery(engine, journal_id, "bed-board"),
                         connection_id="bed-board")
    page = console.as_("olive").text(f"/exceptions/{bed}/")
    owners = page.split('id="connection-owners"')[1].split("</dl>")[0]
    assert "Marcus Lee" in owners and "Patient flow IT" in owners
    assert "Pager patientflow-oncall" in owners
    assert page.index('id="recovery-procedure"') < page.index('id="connection-owners"')
    assert 'href="/catalog/bed-board" id="catalog-entry"' in page
    north = console.as_("olive").text(f"/exceptions/{dead_item(engine)}/")
    assert "Clinic IT" in north and "Phone +1 555 0100 ext 4700" in north


def test_lists_say_when_in_words_a_person_reads(console):
    """Times with their clock time, error classes and owners in words (the codes kept
    in a title), the steps of a short procedure in full with a link to the rest, and
    an escalation that did not come not called "was due" while it lies ahead."""
    engine = console.engine
    item_id = dead_item(engine)
    with engine.begin() as connection:
        connection.execute(update(ExceptionItem).where(ExceptionItem.id == item_id).values(
            recovery_procedure="1. The bed board rebuilds from the ADT feed once it is "
            "back,\n   so nothing is lost while it is down.\n2. Retry the dead letters in "
            "order.", escalate_at=now_utc() + timedelta(minutes=28), escalate_to="admin"))
    browser = console.as_("olive")
    page = browser.text("/exceptions/")
    row = items_table(page)
    assert re.search(r"\d\d:\d\d UTC,<br>\d+ s ago", row)
    assert 'title="error class transport_error">could not connect (down or busy)<' in row
    # Every step of a short procedure: the one that fits this outage may be the second.
    assert ("1. The bed board rebuilds from the ADT feed once it is back, "
            "so nothing is lost while it is down.</span>") in row
    assert "2. Retry the dead letters in order.</span>" in row
    assert f'href="/exceptions/{item_id}/#recovery-procedure">The whole procedure' in row
    assert "Owned by operators" in row and ">due in 2" in row
    groups = page.split('id="groups"')[1].split("</table>")[0]
    assert "could not connect (down or busy)" in groups and "UTC,<br>" in groups
    browser.post(f"/exceptions/{item_id}/resolve", {"reason": "keyed in"})
    settled = browser.text(f"/exceptions/{item_id}/")
    escalation = settled.split('id="escalation">')[1].split("</dd>")[0]
    assert "would have been due in 2" in escalation and "was due" not in escalation
    with engine.begin() as connection:
        connection.execute(update(ExceptionItem).where(ExceptionItem.id == item_id).values(
            escalate_at=now_utc() - timedelta(hours=1)))
    escalation = browser.text(f"/exceptions/{item_id}/").split(
        'id="escalation">')[1].split("</dd>")[0]
    assert "was due" in escalation
