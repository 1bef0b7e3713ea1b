"""The work queue on SQLite and PostgreSQL: a hold task's approval releases exactly the
deliveries it holds, its rejection cancels them; notify and work tasks are completed;
each decision is made once, audited, and timed from the message's receipt. Who may
act in which queue is tests/admin/test_task_access.py's matrix."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import metrics
from engine.queues import Forbidden, Invalid, NotFound, Refused
from engine.security.audit import AuditLog
from engine.store.models import AuditEvent, Delivery, Task
from engine.work_queue import WorkQueue
from tests.queue_rows import (
    HELD_ROW,
    as_,
    delivery,
    delivery_statuses,
    entry,
    held_review,
    prepared,
    task,
)


@pytest.fixture
def work(engine) -> WorkQueue:
    prepared(engine)
    return WorkQueue(engine)


def completed_count(queue: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "switchboard_receive_to_task_completed_seconds_count", {"queue": queue})
    return value or 0.0


def task_events(engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(
            AuditEvent.target_type == "task").order_by(AuditEvent.id)))


def two_holds(engine) -> tuple[int, int, dict[str, int]]:
    """One message with two hold rows, each keeping one delivery, and a delivery no row
    holds: (task a, task b, delivery ids by name)."""
    journal_id, _ = entry(engine)
    ids = {"a": delivery(engine, journal_id, "ehr-fhir", "held", held_by="row-a"),
           "b": delivery(engine, journal_id, "clinic-north", "held", held_by="row-b"),
           "free": delivery(engine, journal_id, "lab-system", "pending")}
    return task(engine, journal_id, row_id="row-a"), task(engine, journal_id,
                                                         row_id="row-b"), ids


def test_approving_the_pipelines_review_releases_its_held_delivery(engine, work):
    task_id, journal_id = held_review(engine)
    before = delivery_statuses(engine, journal_id)
    counted = completed_count("nurse-review")
    view = work.approve(task_id, as_("cora"), reason="looked fine")
    assert (view["status"], view["decided_by"]) == ("approved", "cora")
    assert view["completed_at"]
    after = delivery_statuses(engine, journal_id)
    changed = {i: (before[i], after[i]) for i in after if before[i] != after[i]}
    with Session(engine) as session:
        held_id = session.scalars(select(Delivery.id).where(
            Delivery.held_by_row == HELD_ROW)).one()
        decision = session.get(Task, task_id).payload["decision"]
    assert changed == {held_id: ("held", "pending")}
    assert (decision["outcome"], decision["reason"], decision["by"]) == (
        "approved", "looked fine", "cora")
    assert completed_count("nurse-review") == counted + 1
    (event,) = task_events(engine)
    assert (event.actor, event.action, event.detail) == ("cora", "task.approve", {
        "status": "approved", "deliveries": [held_id], "delivery_status": "pending"})
    assert AuditLog(engine).verify() == []


def test_each_task_decides_only_the_deliveries_its_row_holds(engine, work):
    first, second, ids = two_holds(engine)
    work.approve(first, as_("cora"))
    assert delivery_statuses(engine) == {ids["a"]: "pending", ids["b"]: "held",
                                         ids["free"]: "pending"}
    work.reject(second, as_("cora"), "results belong to another patient")
    assert delivery_statuses(engine) == {ids["a"]: "pending", ids["b"]: "cancelled",
                                         ids["free"]: "pending"}


def test_reject_keeps_the_reason_on_the_task_not_in_the_audit_trail(engine, work):
    task_id, journal_id = held_review(engine)
    with pytest.raises(Invalid, match="needs a reason"):
        work.reject(task_id, as_("cora"), " ")
    view = work.reject(task_id, as_("cora"), "SECRET-NAME: wrong patient")
    assert view["status"] == "rejected"
    assert "cancelled" in delivery_statuses(engine, journal_id).values()
    with Session(engine) as session:
        decision = session.get(Task, task_id).payload["decision"]
    assert (decision["outcome"], decision["reason"]) == (
        "rejected", "SECRET-NAME: wrong patient")
    (event,) = task_events(engine)
    assert event.action == "task.reject" and "SECRET-NAME" not in str(event.detail)


def test_a_task_is_decided_once(engine, work):
    task_id, journal_id = held_review(engine)
    work.approve(task_id, as_("cora"))
    with pytest.raises(Refused, match=f"task {task_id} is approved, no longer open"):
        work.reject(task_id, as_("cora"), "too late")
    with pytest.raises(Refused):
        work.approve(task_id, as_("adam"))
    assert "cancelled" not in delivery_statuses(engine, journal_id).values()
    assert len(task_events(engine)) == 1


def test_notify_and_work_tasks_are_completed_not_decided(engine, work):
    journal_id, _ = entry(engine)
    notify = task(engine, journal_id, mode="notify", queue="care-coordination")
    hold = task(engine, journal_id)
    with pytest.raises(Refused, match=r"is a notify task and holds nothing\. Complete it"):
        work.approve(notify, as_("cora"))
    with pytest.raises(Refused, match=r"holds deliveries.*Approve or reject it"):
        work.complete(hold, as_("cora"))
    counted = completed_count("care-coordination")
    view = work.complete(notify, as_("cora"))
    assert (view["status"], view["decided_by"]) == ("completed", "cora")
    assert completed_count("care-coordination") == counted + 1
    # A task for no message (nothing was received) completes, untimed; a queue the
    # catalog does not hold is the admins'.
    orphan = task(engine, None, mode="work", row_id=None, queue="outreach")
    untimed = completed_count("outreach")  # the metric is the process's: others count
    assert work.complete(orphan, as_("adam"))["status"] == "completed"
    assert completed_count("outreach") == untimed


def test_assign_only_to_someone_who_may_act_on_the_task(engine, work):
    journal_id, _ = entry(engine)
    hold = task(engine, journal_id)
    notify = task(engine, journal_id, mode="notify", queue="escalations")
    with pytest.raises(Invalid, match=r"'olive' \(operator\) may not act.*clinician"):
        work.assign(hold, "olive", as_("cora"))
    assert work.assign(hold, "cora", as_("cora"))["assignee"] == "cora"
    with pytest.raises(Invalid, match=r"'cora' \(clinician\) may not act.*operator"):
        work.assign(notify, "cora", as_("adam"))
    assert work.assign(notify, "olive", as_("adam"))["status"] == "assigned"
    assert work.approve(hold, as_("cora"))["status"] == "approved"  # assigned is still open
    assert [e.action for e in task_events(engine)] == [
        "task.assign", "task.assign", "task.approve"]


def test_show_gives_the_payload_and_holds_and_audits_the_view(engine, work):
    task_id, _ = held_review(engine)
    view = work.show(task_id, as_("cora"))
    assert view["message_id"] and view["payload"]
    assert view["holds"] == [{"delivery_id": view["holds"][0]["delivery_id"],
                              "destination": "ehr-fhir", "name": "EHR FHIR R4 endpoint",
                              "status": "held", "attempts": 0,
                              "error_class": None, "next_attempt_at": None,
                              "destination_failing": False}]
    (event,) = task_events(engine)
    assert (event.actor, event.action, event.target_id, event.detail) == (
        "cora", "task.view", str(task_id), None)
    with pytest.raises(NotFound, match="no task 999"):
        work.show(999, as_("cora"))


def test_list_filters_oldest_first_without_payloads(engine, work):
    journal_id, _ = entry(engine)
    first = task(engine, journal_id, queue="nurse-review")
    task(engine, journal_id, queue="outreach", mode="work", kind="delivery")
    third = task(engine, journal_id, queue="nurse-review", status="approved")
    admin = as_("adam")
    listed = work.list(queue="nurse-review", viewer=admin)
    assert [t["id"] for t in listed.items] == [first, third]
    assert "payload" not in listed.items[0]
    assert work.list(kind="delivery", viewer=admin).total == 1
    assert [t["id"] for t in work.list(status="open", queue="nurse-review",
                                       viewer=admin).items] == [first]
    # Others list only the queues theirs to see.
    assert work.list(viewer=as_("olive")).total == 2
    with pytest.raises(Forbidden, match=r"may not do this \(task.list\) in task queue 'outreach'"):
        work.list(queue="outreach", viewer=as_("cora"))
    with pytest.raises(Forbidden, match="your role may see no task queue"):
        work.list(viewer=as_("anna"))


def test_approve_and_reject_at_once_decide_once(engine, work):
    task_id, journal_id = held_review(engine)
    outcomes: list[str] = []

    def decide(action) -> None:
        try:
            outcomes.append(action()["status"])
        except Refused:
            outcomes.append("refused")

    threads = [threading.Thread(target=decide,
                                args=(lambda: work.approve(task_id, as_("cora")),)),
               threading.Thread(target=decide,
                                args=(lambda: work.reject(task_id, as_("adam"), "no"),))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("refused") == 1
    assert {"approved", "rejected"} & set(outcomes)
    statuses = set(delivery_statuses(engine, journal_id).values())
    assert ("cancelled" in statuses) == ("rejected" in outcomes)
    assert AuditLog(engine).verify() == []


def test_a_claim_is_released_to_the_queue_and_audited(engine, work):
    journal_id, _ = entry(engine)
    hold = task(engine, journal_id)
    with pytest.raises(Refused, match="not claimed"):
        work.unassign(hold, as_("cora"))
    work.assign(hold, "cora", as_("cora"))
    with pytest.raises(Forbidden):
        work.unassign(hold, as_("olive"))  # operators may not act in the nurses' queue
    released = work.unassign(hold, as_("cora"))
    assert (released["status"], released["assignee"]) == ("open", None)
    assert [e.action for e in task_events(engine)] == ["task.assign", "task.unassign"]
    (event,) = [e for e in task_events(engine) if e.action == "task.unassign"]
    assert event.detail == {"assignee": "cora", "status": "open"}
    work.approve(hold, as_("cora"))
    with pytest.raises(Refused, match="approved"):
        work.unassign(hold, as_("cora"))


def test_released_results_that_have_not_arrived_are_listed_for_their_queue(engine, work):
    """A review approved whose released delivery then failed: the result never reached
    the chart, and the people of its queue are told, with where it stands."""
    journal_id, _ = entry(engine)
    failing = task(engine, journal_id, row_id="row-a")
    fine = task(engine, journal_id, row_id="row-b")
    waiting = task(engine, journal_id, row_id="row-c")
    dead = delivery(engine, journal_id, "ehr-fhir", "held", held_by="row-a")
    delivery(engine, journal_id, "clinic-north", "held", held_by="row-b")
    delivery(engine, journal_id, "lab-system", "held", held_by="row-c")
    work.approve(failing, as_("cora"))
    work.approve(fine, as_("cora"))
    assert work.undelivered(as_("cora")) == []  # released, still on its way
    with engine.begin() as connection:
        connection.execute(Delivery.__table__.update().where(Delivery.id == dead).values(
            status="retrying", attempts=2, error_class="transport_error",
            last_error="connection refused"))
    (item,) = work.undelivered(as_("cora"))
    assert (item["task_id"], item["destination"], item["status"]) == (
        failing, "ehr-fhir", "retrying")
    assert item["queue"] == "nurse-review" and waiting not in (item["task_id"],)
    assert work.undelivered(as_("rita")) == []  # not a queue registrars see
    view = work.show(failing, as_("cora"))
    assert view["holds"][0]["attempts"] == 2
    # The kind of failure, not its text: a destination's answer may quote the patient.
    assert view["holds"][0]["error_class"] == "transport_error"
    # A review still waiting to send to the same destination hears it is failing now;
    # one for another destination does not.
    same = task(engine, journal_id, row_id="row-d")
    delivery(engine, journal_id, "ehr-fhir", "held", held_by="row-d")
    assert work.show(same, as_("cora"))["holds"][0]["destination_failing"] is True
    assert work.show(waiting, as_("cora"))["holds"][0]["destination_failing"] is False
    assert "last_error" not in view["holds"][0]
