"""The task inbox over the test client, on SQLite and PostgreSQL: each role sees the
queues its task_access names (a clinician never a registration queue's tasks), the
overdue first, filtered, sorted and paged on the server; a result review shows its
abnormal value, range and flag plainly and what its route row says it is for; claim,
approve (the held delivery is released), reject (with a reason) and complete (in one of
the route row's states); every refusal is a 403, audited."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.journal import now_utc
from engine.store.models import AuditEvent, Delivery, Task
from tests.queue_rows import (
    PEOPLE,
    delivery_statuses,
    entry,
    held_review,
    referral_task,
    task,
)

ROLES = {role: name for name, role in PEOPLE.items()}
# Who may use each route, for the nurse-review hold task that tests.queue_rows.held_review
# makes (its id in place of <id:task_id>), as the shipped catalog's task_access says:
# everyone opens the inbox; operators see the task but not what it holds; clinicians
# (and admins) read and act on it; the rest may not even see it.
_SEE = {"operator", "clinician", "admin"}
_ACT = {"clinician", "admin"}
_ALL = set(ROLES)
ACCESS = {
    (method, rule): {role: "allow" if role in allowed else "deny" for role in ROLES}
    for method, rule, allowed in (
        ("GET", "/tasks/", _ALL),
        ("GET", "/tasks/<id:task_id>", _SEE),
        ("GET", "/tasks/<id:task_id>/holds", _SEE),
        ("POST", "/tasks/<id:task_id>/claim", _ACT),
        ("POST", "/tasks/<id:task_id>/unassign", _ACT),
        ("POST", "/tasks/<id:task_id>/approve", _ACT),
        ("POST", "/tasks/<id:task_id>/reject", _ACT),
        ("POST", "/tasks/<id:task_id>/complete", _ACT),
    )
}
FORMS = {"reject": {"reason": "not this patient's result"}, "approve": {"note": "fine"}}


def url(rule: str, task_id: int) -> str:
    return rule.replace("<id:task_id>", str(task_id))


def form_for(rule: str) -> dict[str, str]:
    return FORMS.get(rule.rsplit("/", 1)[-1], {})


def due(engine, task_id: int, hours: float) -> int:
    with engine.begin() as connection:
        connection.execute(update(Task).where(Task.id == task_id)
                           .values(due_at=now_utc() + timedelta(hours=hours)))
    return task_id


def denials(engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(
            AuditEvent.action == "access.denied").order_by(AuditEvent.id)))


def main(page: str) -> str:
    """The page's own content, without the menu."""
    return page[page.index("<main"):page.index("</main>")]


def test_the_access_table_names_every_route_and_role(console):
    rules = {(method, rule.rule) for rule in console.app.url_map.iter_rules()
             if rule.endpoint.startswith("tasks.")
             for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert set(ACCESS) == rules
    assert all(set(cells) == set(ROLES) for cells in ACCESS.values())


def test_each_route_refuses_whom_the_table_denies_and_serves_the_rest(console):
    task_id, _ = held_review(console.engine)
    for (method, rule), cells in ACCESS.items():
        for role, verdict in cells.items():
            browser = console.as_(ROLES[role])
            path = url(rule, task_id)
            response = browser.get(path) if method == "GET" else browser.post(
                path, form_for(rule))
            if verdict == "deny":
                assert response.status_code == 403, (method, rule, role)
            else:
                assert response.status_code in (200, 303, 409), (method, rule, role,
                                                                 response.status_code)
    assert {event.actor for event in denials(console.engine)} == {
        ROLES[role] for role in ("analyst", "compliance", "approver", "registrar",
                                 "operator")}


def test_anonymous_visitors_are_sent_to_sign_in_from_every_route(console):
    task_id, _ = held_review(console.engine)
    for method, rule in ACCESS:
        browser = console.anonymous()
        path = url(rule, task_id)
        response = browser.get(path) if method == "GET" else browser.post(path, form_for(rule))
        assert response.status_code == 302, (method, rule)
        assert response.headers["Location"].startswith("/sign-in/"), (method, rule)


def test_clinicians_land_on_their_inbox_with_the_overdue_first(console):
    engine = console.engine
    review, _ = held_review(engine)
    referral, _ = referral_task(engine)
    journal_id, _ = entry(engine)
    late = due(engine, task(engine, journal_id, row_id="row-b"), -3)
    response = console.as_("cora").get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/tasks/"
    page = main(console.as_("cora").text("/tasks/"))
    links = re.findall(r'href="/tasks/(\d+)" class="task-link', page)
    assert links == [str(late), str(review), str(referral)]
    assert "overdue by 3h" in page and "task-overdue" in page
    assert "Review abnormal results before they are written to the chart." in page
    assert "555-44-4444" in page  # the patient, for whom the queue lets read it
    assert re.search(r'data-due="[^"]+"', page)
    assert "Nurse review queue" in page and "Referral intake queue" in page
    assert "Identity review queue" not in page  # a registration queue: not theirs
    assert "1 overdue" in page


def test_what_each_role_finds_in_its_inbox(console):
    review, _ = held_review(console.engine)
    operator = main(console.as_("olive").text("/tasks/"))
    assert f'href="/tasks/{review}"' in operator and "555-44-4444" not in operator
    assert "not shown" in operator
    registrar = main(console.as_("rita").text("/tasks/"))
    assert f'href="/tasks/{review}"' not in registrar and "Identity review queue" in registrar
    for name in ("anna", "carl", "abe"):
        assert "No task queue is worked by your role" in console.as_(name).text("/tasks/"), name


def test_filters_by_queue_status_and_assignee(console):
    engine = console.engine
    journal_id, _ = entry(engine)
    nurse = task(engine, journal_id)
    referral = task(engine, journal_id, mode="notify", row_id=None, queue="referral-intake")
    done = task(engine, journal_id, status="approved")
    cora = console.as_("cora")
    assert cora.post(f"/tasks/{nurse}/claim").status_code == 303

    def listed(query: str) -> list[int]:
        return [int(i) for i in re.findall(r'href="/tasks/(\d+)" class="task-link',
                                           cora.text(f"/tasks/?{query}"))]

    assert listed("queue=referral-intake") == [referral]
    assert listed("mine=1") == [nurse]
    assert listed("status=approved") == [done]
    assert listed("status=all&sort=created") == [nurse, referral, done]
    assert listed("status=all&sort=-created") == [done, referral, nurse]
    assert listed("status=nonsense&sort=nonsense") == [nurse, referral]  # the defaults
    assert "Claimed by you" in cora.text("/tasks/?mine=1")


def test_a_clinician_may_not_list_a_registration_queue(console):
    response = console.as_("cora").get("/tasks/?queue=identity-review")
    assert response.status_code == 403
    [event] = denials(console.engine)
    assert event.actor == "cora" and "identity-review" in event.target_id


def test_pages_of_tasks(console):
    engine = console.engine
    journal_id, _ = entry(engine)
    made = [task(engine, journal_id) for _ in range(27)]
    cora = console.as_("cora")
    first = cora.text("/tasks/?sort=created")
    assert "Showing 1–25 of 27 tasks" in first
    assert 'href="/tasks/?sort=created&amp;page=2" rel="next">Next' in first
    second = cora.text("/tasks/?sort=created&page=2")
    assert re.findall(r'href="/tasks/(\d+)" class="task-link', second) == [
        str(i) for i in made[25:]]
    assert "Showing 26–27 of 27 tasks" in second and 'rel="prev">Previous</a>' in second


def test_a_result_review_shows_the_abnormal_value_plainly(console):
    review, _ = held_review(console.engine)
    page = main(console.as_("cora").text(f"/tasks/{review}"))
    # Whose result it is comes first, then each result once, in one table.
    assert page.index('id="patient-banner"') < page.index('id="results-heading"')
    banner = page[page.index('id="patient-banner"'):page.index('id="results-heading"')]
    assert "EVERYWOMAN, EVE E" in banner and "555-44-4444" in banner
    results = page[page.index('id="results-heading"'):page.index("</table>")]
    assert ">1 abnormal result<" in results.replace("\n", "")
    assert results.count("GLUCOSE") == 1
    assert re.search(r'class="result-value[^"]*">182</span>\s*<span[^>]*>mg/dl', results)
    assert "High (H)" in results and ">70–105<" in results  # the range as a range
    assert "<h1 class=\"h4 mb-3\">Review abnormal results before they are written to the " \
        "chart.</h1>" in page
    assert "Approve and release" in page
    assert 'href="#act-heading"' in page  # straight to what to do, by keyboard
    # The plumbing is there for whoever asks, folded away.
    technical = page[page.index("<details"):]
    assert "Technical details" in technical and f"Task #{review}" in technical
    assert "control id" in technical and "ORU^R01" in technical
    assert "ORU^R01" not in page[:page.index("<details")]
    assert "{" not in page.replace("{{", "")  # no raw JSON
    with Session(console.engine) as session:
        viewed = session.scalars(select(AuditEvent.actor).where(
            AuditEvent.action == "task.view")).all()
    assert viewed == ["cora"]


def review_of(console, record: dict) -> int:
    journal_id, _ = entry(console.engine)
    with console.engine.begin() as connection:
        return connection.execute(insert(Task).values(
            journal_id=journal_id, queue="nurse-review", kind="abnormal-result-review",
            mode="hold", row_id="row-a", status="open", payload=record,
            created_at=now_utc())).inserted_primary_key[0]


def test_the_critical_results_come_first_and_the_doctor_reads_as_a_name(console):
    def result(code: str, flags: list[str], value: object) -> dict:
        return {"code": code, "display": code, "abnormal_flags": flags,
                "value": {"type": "NM", "number": value}, "reference_range": "3.5-5.1"}

    review = review_of(console, {
        "patient": {"names": [{"family": "DOE", "given": "JANE"}]},
        "results": [result("SODIUM", [], 140), result("CREATININE", ["H"], 1.9),
                    result("POTASSIUM", ["HH"], 6.9),
                    {"code": "COMMENT", "display": "COMMENT",
                     "value": {"type": "TX", "text": "Sample slightly haemolysed"}}],
        "orders": [{"placer_id": "845439",
                    "ordering_provider": {"id": "1234", "family": "SMITH", "given": "JOHN",
                                          "prefix": "DR"}}]})
    page = main(console.as_("cora").text(f"/tasks/{review}"))
    table = page[page.index('id="results-heading"'):page.index("</table>")]
    assert [table.index(code) for code in ("POTASSIUM", "CREATININE", "SODIUM")
            ] == sorted(table.index(c) for c in ("POTASSIUM", "CREATININE", "SODIUM"))
    assert "Critically high (HH)" in table and ">3.5–5.1<" in table
    assert ">2 abnormal results<" in table and "1 critical" in table
    # The lab's note in words stands above the values it bears on (found in the nurses'
    # second check: last in the table, "haemolysed" was easy to miss).
    assert "Sample slightly haemolysed" not in table
    note = page[page.index("lab-note"):page.index('id="results-heading"')]
    assert "The lab notes:</strong> Sample slightly haemolysed" in note
    assert "DR SMITH, JOHN" in page and ">Family<" not in page


def test_one_page_of_tasks_has_no_pager(console):
    review, _ = held_review(console.engine)
    page = main(console.as_("cora").text("/tasks/"))
    assert f'href="/tasks/{review}"' in page
    assert 'rel="next"' not in page and "Previous" not in page


def test_a_claim_is_given_back_to_the_queue(console):
    review, _ = held_review(console.engine)
    cora = console.as_("cora")
    page = main(cora.text(f"/tasks/{review}"))
    assert "You can approve or reject without claiming" in page
    assert "Give it back" not in page
    assert cora.post(f"/tasks/{review}/claim").status_code == 303
    page = main(cora.text(f"/tasks/{review}"))
    assert "Claimed by you" in page and "Give it back to the queue" in page
    response = cora.post(f"/tasks/{review}/unassign")
    assert response.status_code == 303
    whole = cora.text(f"/tasks/{review}")
    assert "Given back: anyone in the queue may take it now." in whole
    page = main(whole)
    assert ">Waiting<" in page and "Claimed by you" not in page
    response = cora.post(f"/tasks/{review}/unassign")
    assert response.status_code == 409 and "is not claimed by anyone" in \
        response.get_data(as_text=True)


def test_a_released_result_that_did_not_arrive_is_said_in_red(console):
    """Approving a review sends its result on; when sending then fails, the nurse who
    believes it is in the chart is told, on the task and in the inbox: while it is
    retried, that it is not there yet; once it gave up, that the team was told."""
    review, journal_id = held_review(console.engine)
    cora = console.as_("cora")
    assert cora.post(f"/tasks/{review}/approve", {}).status_code == 303
    assert "has not reached" not in cora.text(f"/tasks/{review}")
    with console.engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.journal_id == journal_id)
                           .values(status="retrying", attempts=2,
                                   error_class="transport_error"))
    page = main(cora.text(f"/tasks/{review}"))
    alert = page[page.index('id="not-arrived"'):]
    alert = alert[:alert.index("</div>")]
    assert "alert-danger" in page[page.index('id="not-arrived"') - 80:][:120]
    assert "has not reached EHR FHIR R4 endpoint yet" in alert and "trying again" in alert
    assert "team" not in alert
    inbox = main(cora.text("/tasks/"))
    assert "A result you approved has not reached" in inbox
    assert f'href="/tasks/{review}"' in inbox
    # A colleague sees it too, quieter (found in the admins' second check: a new nurse's
    # first page opened on another nurse's red alarm).
    colleague = main(console.as_("adam").text("/tasks/"))
    assert 'id="not-arrived"' not in colleague
    assert "1 result a colleague approved in your queues has not arrived yet" in colleague
    with console.engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.journal_id == journal_id)
                           .values(status="dead"))
    page = main(cora.text(f"/tasks/{review}"))
    alert = page[page.index('id="not-arrived"'):]
    alert = alert[:alert.index("</div>")]
    assert "has not reached EHR FHIR R4 endpoint" in alert
    assert "integration team has been told" in alert
    assert "tell the ordering doctor (PRIMARY, PATRICIA P) yourself" in alert


def test_an_error_is_said_at_the_top_and_takes_the_focus(console):
    review, _ = held_review(console.engine)
    cora = console.as_("cora")
    assert cora.post(f"/tasks/{review}/approve", {}).status_code == 303
    response = cora.post(f"/tasks/{review}/reject", {"reason": "changed my mind"})
    assert response.status_code == 409
    page = main(response.get_data(as_text=True))
    error = re.search(r'<div class="alert alert-danger[^"]*"[^>]*id="task-error"[^>]*>', page)
    assert error and "autofocus" in error.group(0) and 'tabindex="-1"' in error.group(0)
    assert page.index('id="task-error"') < page.index('id="patient-banner"')


def test_an_operator_sees_the_task_but_not_what_it_holds(console):
    review, _ = held_review(console.engine)
    page = main(console.as_("olive").text(f"/tasks/{review}"))
    assert "Review abnormal results" in page and "not read what it holds" in page
    assert "EVERYWOMAN" not in page and "182" not in page and "555-44-4444" not in page
    assert "Approve and release" not in page


def test_a_registration_queue_shows_demographics_not_results(console):
    journal_id, _ = entry(console.engine)
    record = {"patient": {"names": [{"family": "DOE", "given": "JANE"}],
                          "birth_date": "1980-01-01"},
              "results": [{"code": "1554-5", "display": "GLUCOSE",
                           "value": {"type": "NM", "number": 182}, "abnormal_flags": ["H"]}]}
    with console.engine.begin() as connection:
        merge = connection.execute(insert(Task).values(
            journal_id=journal_id, queue="identity-review", kind="merge-review", mode="hold",
            row_id="row-a", status="open", payload=record, created_at=now_utc())
        ).inserted_primary_key[0]
    page = main(console.as_("rita").text(f"/tasks/{merge}"))
    assert "DOE, JANE" in page and "1980-01-01" in page
    assert "GLUCOSE" not in page and "182" not in page and "High (H)" not in page
    assert console.as_("cora").get(f"/tasks/{merge}").status_code == 403


def test_claim_then_approve_releases_the_held_delivery(console):
    review, journal_id = held_review(console.engine)
    cora = console.as_("cora")
    response = cora.post(f"/tasks/{review}/claim")
    assert response.status_code == 303 and response.headers["Location"] == f"/tasks/{review}"
    assert "Claimed by you" in cora.text(f"/tasks/{review}")
    response = cora.post(f"/tasks/{review}/approve", {"note": "repeat in a week"})
    assert response.status_code == 303
    assert set(delivery_statuses(console.engine, journal_id).values()) == {"pending"}
    page = cora.text(f"/tasks/{review}")
    assert "Approved: the result is sent on." in page
    assert "Released: waiting to be sent" in page and "repeat in a week" in page
    assert f'hx-get="/tasks/{review}/holds"' in page  # it follows the delivery on
    holds = cora.text(f"/tasks/{review}/holds")
    assert "EHR FHIR R4 endpoint" in holds and 'data-status="pending"' in holds
    # Decided once: a second decision is refused, in words.
    response = cora.post(f"/tasks/{review}/reject", {"reason": "changed my mind"})
    assert response.status_code == 409
    assert f"Task {review} is approved, no longer open" in response.get_data(as_text=True)


def test_a_rejection_needs_a_reason_said_beside_the_field(console):
    review, journal_id = held_review(console.engine)
    cora = console.as_("cora")
    response = cora.post(f"/tasks/{review}/reject", {"reason": "  "})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'id="reject-reason"[^>]*\n?[^>]*aria-describedby="reject-reason-error"',
                     page)
    assert 'id="reject-reason-error">Say why what this review holds must not go' in page
    assert "held" in delivery_statuses(console.engine, journal_id).values()
    response = cora.post(f"/tasks/{review}/reject", {"reason": "wrong patient"})
    assert response.status_code == 303
    page = cora.text(f"/tasks/{review}")
    assert "Cancelled: will not be sent" in page and "wrong patient" in page
    assert "Rejected by cora" in page


def test_a_referral_is_completed_in_one_of_its_states(console):
    referral, _ = referral_task(console.engine)
    cora = console.as_("cora")
    page = cora.text(f"/tasks/{referral}")
    assert "Triage the referral and contact the patient to book." in page
    for state in ("accepted", "declined", "scheduled"):
        assert f'<option value="{state}"' in page
    assert "EVERYMAN, ADAM A" in page and "Referrals" in page
    response = cora.post(f"/tasks/{referral}/complete", {"state": ""})
    assert response.status_code == 400
    assert 'id="complete-state-error">Task' in response.get_data(as_text=True)
    response = cora.post(f"/tasks/{referral}/complete",
                         {"state": "scheduled", "note": "booked for 3 Dec"})
    assert response.status_code == 303
    page = cora.text(f"/tasks/{referral}")
    assert "Completed: scheduled." in page and "Completed: scheduled</dd>" in page


def test_actions_a_task_does_not_take_are_refused_in_words(console):
    journal_id, _ = entry(console.engine)
    notify = task(console.engine, journal_id, mode="notify", row_id=None,
                  queue="care-coordination")
    response = console.as_("cora").post(f"/tasks/{notify}/approve")
    assert response.status_code == 409
    assert "holds nothing. Complete it instead." in response.get_data(as_text=True)
    assert console.as_("cora").get("/tasks/999999").status_code == 404


@pytest.mark.parametrize("name", ["olive", "rita", "anna"])
def test_who_may_not_act_is_refused_and_audited(console, name):
    review, journal_id = held_review(console.engine)
    for action, form in (("claim", {}), ("approve", {}), ("reject", {"reason": "no"}),
                         ("reject", {})):
        response = console.as_(name).post(f"/tasks/{review}/{action}", form)
        assert response.status_code == 403, (name, action)
    assert "held" in delivery_statuses(console.engine, journal_id).values()
    assert len(denials(console.engine)) == 4


def test_the_inbox_names_the_patient_and_what_is_abnormal(console):
    """Found in the nurses' check: every review in the inbox read alike, an MRN and the
    same sentence, so the critical potassium could not be told from the rest."""
    review = review_of(console, {
        "patient": {"names": [{"family": "GARCIA", "given": "MARIA"}],
                    "identifiers": [{"value": "MRN-3001"}]},
        "results": [{"code": "2951-2", "display": "SODIUM", "abnormal_flags": ["N"]},
                    {"code": "2160-0", "display": "CREATININE", "abnormal_flags": ["H"]},
                    {"code": "2823-3", "display": "POTASSIUM", "abnormal_flags": ["HH"]}]})
    page = main(console.as_("cora").text("/tasks/"))
    row = page[page.index(f'href="/tasks/{review}"'):]
    row = row[:row.index("</tr>")]
    assert "GARCIA, MARIA" in row and "MRN-3001" in row
    assert row.index("POTASSIUM: Critically high") < row.index("CREATININE: High")
    assert 'badge-danger mr-1">POTASSIUM' in row and "SODIUM" not in row
    operator = main(console.as_("olive").text("/tasks/"))
    assert "GARCIA" not in operator and "POTASSIUM" not in operator


def test_a_reviewer_is_told_before_approving_that_results_are_not_getting_through(console):
    """Found in the nurses' second check: a second result was approved into a chart that
    had just refused the first, with no word of it; and the doctor to tell was not named."""
    first, journal_id = held_review(console.engine)
    cora = console.as_("cora")
    second = task(console.engine, journal_id, row_id="row-b")
    from tests.queue_rows import delivery
    delivery(console.engine, journal_id, "ehr-fhir", "held", held_by="row-b")
    assert 'id="destination-failing"' not in cora.text(f"/tasks/{second}")
    assert cora.post(f"/tasks/{first}/approve", {}).status_code == 303
    with console.engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.journal_id == journal_id,
                                                  Delivery.held_by_row != "row-b")
                           .values(status="dead", updated_at=now_utc()))
    page = main(cora.text(f"/tasks/{second}"))
    warning = page[page.index('id="destination-failing"'):]
    warning = warning[:warning.index("</div>")]
    assert "Results to <strong>EHR FHIR R4 endpoint</strong> are not getting through" \
        in warning
    failed = main(cora.text(f"/tasks/{first}"))
    alert = failed[failed.index('id="not-arrived"'):]
    assert "tell the ordering doctor (PRIMARY, PATRICIA P) yourself" in alert
    inbox = main(cora.text("/tasks/?status=all"))
    assert "done " in inbox and "was due" not in inbox
