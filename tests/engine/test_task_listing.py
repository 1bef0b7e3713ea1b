"""A person's task inbox from the work queue, on SQLite and PostgreSQL alike: sorted by
due time the overdue come first and tasks with no due time last, either way; several
statuses at once; each task says what its route row made it for; each queue's waiting
and overdue counts; and the deliveries a task holds, for whoever may see the task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from engine.journal import now_utc
from engine.queues import OPEN, Forbidden, Invalid
from engine.store.models import Task
from engine.work_queue import WorkQueue
from tests.queue_rows import as_, entry, held_review, prepared, referral_task, task


@pytest.fixture
def work(engine) -> WorkQueue:
    prepared(engine)
    return WorkQueue(engine)


def due(engine, task_id: int, hours: float | None) -> int:
    """Make ``task_id`` due ``hours`` from now (negative: overdue), or never."""
    moment = None if hours is None else now_utc() + timedelta(hours=hours)
    with engine.begin() as connection:
        connection.execute(update(Task).where(Task.id == task_id).values(due_at=moment))
    return task_id


def ids(page) -> list[int]:
    return [item["id"] for item in page.items]


def test_by_due_time_the_overdue_come_first_and_no_due_time_last(engine, work):
    journal_id, _ = entry(engine)
    later = due(engine, task(engine, journal_id), 3)
    never = due(engine, task(engine, journal_id), None)
    overdue = due(engine, task(engine, journal_id), -1)
    soon = due(engine, task(engine, journal_id), 0.5)
    cora = as_("cora")
    assert ids(work.list(viewer=cora, sort="due")) == [overdue, soon, later, never]
    assert ids(work.list(viewer=cora, sort="-due")) == [later, soon, overdue, never]
    assert ids(work.list(viewer=cora)) == [later, never, overdue, soon]  # oldest first
    assert ids(work.list(viewer=cora, sort="-created")) == [soon, overdue, never, later]
    # Pages split the same order.
    assert ids(work.list(viewer=cora, sort="due", page=2, per_page=3)) == [never]
    with pytest.raises(Invalid, match=r"cannot sort tasks by 'patient'.*one of created, due"):
        work.list(viewer=cora, sort="patient")


def test_by_assignee_the_unassigned_come_last_on_both_stores(engine, work):
    journal_id, _ = entry(engine)
    free = task(engine, journal_id)
    mine = task(engine, journal_id)
    work.assign(mine, "cora", as_("cora"))
    assert ids(work.list(viewer=as_("cora"), sort="assignee")) == [mine, free]
    assert ids(work.list(viewer=as_("cora"), sort="-assignee")) == [mine, free]


def test_several_statuses_at_once(engine, work):
    journal_id, _ = entry(engine)
    waiting = task(engine, journal_id)
    claimed = task(engine, journal_id, status="assigned")
    task(engine, journal_id, status="approved")
    assert ids(work.list(status=OPEN, viewer=as_("cora"))) == [waiting, claimed]
    assert ids(work.list(status="assigned", viewer=as_("cora"))) == [claimed]


def test_each_task_says_what_its_route_row_made_it_for(engine, work):
    review, _ = held_review(engine)
    referral, _ = referral_task(engine)
    listed = {item["id"]: item for item in work.list(viewer=as_("cora")).items}
    assert listed[review]["for"] == ("Review abnormal results before they are written to "
                                     "the chart.")
    assert listed[referral]["for"]
    assert work.show(review, as_("cora"))["for"] == listed[review]["for"]
    assert work.show(referral, as_("cora"))["states"] == [
        "accepted", "declined", "scheduled"]
    assert work.show(review, as_("cora"))["states"] == []


def test_each_queue_counts_its_waiting_and_overdue_tasks(engine, work):
    journal_id, _ = entry(engine)
    due(engine, task(engine, journal_id), -2)
    due(engine, task(engine, journal_id, status="assigned"), 1)
    due(engine, task(engine, journal_id, status="approved"), -2)  # settled: not waiting
    task(engine, journal_id, queue="identity-review")
    counts = {q["queue"]: (q["waiting"], q["overdue"]) for q in work.waiting(as_("cora"))}
    # A clinician's queues only, the empty ones too.
    assert counts == {"care-coordination": (0, 0), "nurse-review": (2, 1),
                      "referral-intake": (0, 0)}
    assert {q["queue"] for q in work.waiting(as_("rita"))} == {
        "identity-review", "scheduling-desk"}
    nurses = next(q for q in work.waiting(as_("cora")) if q["queue"] == "nurse-review")
    assert nurses["name"] == "Nurse review queue"
    assert nurses["description"].startswith("Abnormal results a nurse reviews")
    assert work.waiting(as_("anna")) == []
    everything = {q["queue"]: q["waiting"] for q in work.waiting(as_("adam"))}
    assert everything["identity-review"] == 1 and "escalations" in everything


def test_what_a_task_holds_is_shown_to_whoever_may_see_it(engine, work):
    review, _ = held_review(engine)
    assert [h["status"] for h in work.holds(review, as_("olive"))] == ["held"]
    work.approve(review, as_("cora"))
    assert [(h["destination"], h["status"]) for h in work.holds(review, as_("cora"))] == [
        ("ehr-fhir", "pending")]
    with pytest.raises(Forbidden, match=r"task.show.*'nurse-review'"):
        work.holds(review, as_("rita"))


def test_access_says_who_may_work_each_queue_as_published(work):
    rules = work.access()
    assert rules.may(as_("cora").roles, "nurse-review", "task.approve")
    assert not rules.may(as_("cora").roles, "identity-review", "task.show")
    assert rules.visible(as_("rita").roles) == {"identity-review", "scheduling-desk"}
