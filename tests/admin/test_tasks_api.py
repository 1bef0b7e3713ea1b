"""The work queue over REST on SQLite and PostgreSQL: operators see the nurse-review
queue but not its payloads; only clinicians decide its holds, once (who may do what in
which queue is test_task_access's matrix); approval releases the held delivery for the
outbox, rejection cancels it; every action is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.security.audit import AuditLog
from engine.store.models import AuditEvent
from tests.queue_rows import (
    delivery_statuses,
    entry,
    held_review,
    outcome_events,
    referral_task,
    task,
)


@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/1", "/api/tasks/1/approve"])
def test_every_route_needs_a_token(api, path):
    method = "POST" if path.endswith("approve") else "GET"
    assert api.call(method, path)[0] == 401


def test_operators_list_tasks_but_see_no_payload_and_decide_nothing(api, engine):
    task_id, _ = held_review(engine)
    for name in ("cora", "olive", "adam"):
        status, body = api.call("GET", "/api/tasks?queue=nurse-review", as_user=name)
        assert status == 200 and [t["id"] for t in body["items"]] == [task_id], name
        assert "payload" not in body["items"][0]
    for name in ("anna", "carl", "abe"):
        status, body = api.call("GET", "/api/tasks", as_user=name)
        assert status == 403 and "no task queue" in body["reason"], name
    # What the task is about, without its payload.
    status, body = api.call("GET", f"/api/tasks/{task_id}", as_user="olive")
    assert status == 200 and "payload" not in body and body["queue"] == "nurse-review"
    for path in ("/approve", "/reject"):
        status, body = api.call("POST", f"/api/tasks/{task_id}{path}", as_user="olive",
                                json={"reason": "no"})
        assert status == 403 and "clinician" in body["reason"]
    status, body = api.call("GET", f"/api/tasks/{task_id}", as_user="cora")
    assert status == 200 and body["payload"] and body["holds"][0]["status"] == "held"


def test_approve_releases_the_hold_once(api, engine):
    task_id, journal_id = held_review(engine)
    url = f"/api/tasks/{task_id}"
    status, body = api.call("POST", f"{url}/approve", as_user="cora", json={"reason": "ok"})
    assert status == 200 and (body["status"], body["decided_by"]) == ("approved", "cora")
    assert "held" not in delivery_statuses(engine, journal_id).values()
    status, body = api.call("POST", f"{url}/reject", as_user="cora", json={"reason": "no"})
    assert status == 409 and "approved, no longer open" in body["reason"]
    with Session(engine) as session:
        actions = session.scalars(select(AuditEvent.action).where(
            AuditEvent.target_type == "task")).all()
    assert actions == ["task.approve"]
    assert AuditLog(engine).verify() == []


def test_reject_needs_a_reason_and_cancels_the_hold(api, engine):
    task_id, journal_id = held_review(engine)
    url = f"/api/tasks/{task_id}/reject"
    status, body = api.call("POST", url, as_user="cora", json={})
    assert status == 400 and '"reason"' in body["reason"]
    assert api.call("POST", url, as_user="cora", json={"reason": "wrong patient"})[0] == 200
    assert "cancelled" in delivery_statuses(engine, journal_id).values()


def test_assign_complete_and_their_conflicts(api, engine):
    journal_id, _ = entry(engine)
    notify = task(engine, journal_id, mode="notify", queue="escalations")
    hold = task(engine, journal_id)
    status, body = api.call("POST", f"/api/tasks/{hold}/assign", as_user="cora",
                            json={"assignee": "olive"})
    # Well formed, but not someone the store holds as able to act on it: a conflict.
    assert status == 409 and "may not act" in body["reason"]
    assert api.call("POST", f"/api/tasks/{hold}/assign", as_user="cora",
                    json={"assignee": "cora"})[0] == 200
    status, body = api.call("POST", f"/api/tasks/{hold}/complete", as_user="cora")
    assert status == 409 and body["hint"] == "Approve or reject it"
    status, body = api.call("POST", f"/api/tasks/{notify}/approve", as_user="olive")
    assert status == 409 and "Complete it instead" in body["reason"]
    status, body = api.call("POST", f"/api/tasks/{notify}/complete", as_user="olive")
    assert status == 200 and body["status"] == "completed"
    assert api.call("POST", f"/api/tasks/{notify}/complete", as_user="olive")[0] == 409
    assert api.call("POST", "/api/tasks/999/complete", as_user="olive")[0] == 404


def test_a_referral_is_completed_in_one_of_its_states(api, engine):
    task_id, _ = referral_task(engine)
    url = f"/api/tasks/{task_id}/complete"
    # The states are its route row's, as stored: a conflict with them, not a malformed
    # request.
    status, body = api.call("POST", url, as_user="cora")
    assert status == 409
    assert "needs a state: one of accepted, declined, scheduled" in body["reason"]
    status, body = api.call("POST", url, as_user="cora", json={"state": "maybe"})
    assert status == 409 and "'maybe' is not a state" in body["reason"]
    assert outcome_events(engine) == []
    status, body = api.call("POST", url, as_user="cora",
                            json={"state": "scheduled", "reason": "booked for 3 Dec"})
    assert status == 200 and body["status"] == "completed"
    (event,) = outcome_events(engine)
    assert (event.event, event.control_id, event.status) == (
        "completed", f"task-{task_id}", "received")
    status, body = api.call("GET", f"/api/tasks/{task_id}", as_user="cora")
    assert body["payload"]["decision"]["state"] == "scheduled"


def test_a_listing_sorts_as_asked_and_says_what_each_task_is_for(api, engine):
    journal_id, _ = entry(engine)
    first, second = task(engine, journal_id), task(engine, journal_id)
    status, body = api.call("GET", "/api/tasks?sort=-created", as_user="cora")
    assert status == 200 and [t["id"] for t in body["items"]] == [second, first]
    assert "for" in body["items"][0]
    status, body = api.call("GET", "/api/tasks?sort=patient", as_user="cora")
    assert status == 400 and "cannot sort tasks by 'patient'" in body["reason"]


def test_a_claim_is_given_back_to_the_queue(api, engine):
    task_id, _ = held_review(engine)
    url = f"/api/tasks/{task_id}"
    status, body = api.call("POST", f"{url}/unassign", as_user="cora")
    assert status == 409 and "not claimed" in body["reason"]
    status, body = api.call("POST", f"{url}/assign", as_user="cora", json={"assignee": "cora"})
    assert status == 200 and body["assignee"] == "cora"
    status, body = api.call("POST", f"{url}/unassign", as_user="olive")
    assert status == 403 and "clinician" in body["reason"]
    status, body = api.call("POST", f"{url}/unassign", as_user="cora")
    assert status == 200 and (body["status"], body["assignee"]) == ("open", None)
