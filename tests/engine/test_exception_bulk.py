"""Bulk actions on the exception queue on SQLite and PostgreSQL: each item acted on
and audited as the single action is, refusals kept with the job, and the job's
progress read by any process from the audit trail."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.exception_bulk import MAX_ITEMS, BulkActions
from engine.exception_queue import ExceptionQueue, InBulk
from engine.queues import Invalid, NotFound
from engine.security.audit import AuditLog
from engine.store.models import AuditEvent, ExceptionItem
from tests.queue_rows import delivery, delivery_statuses, entry, exception_item, prepared
from tests.waiting import wait_until

REASON = "clinic-north was down for maintenance; SECRET-NAME's clinic says it is back"


@pytest.fixture
def bulk(engine) -> BulkActions:
    prepared(engine)
    actions = BulkActions(ExceptionQueue(engine), engine)
    yield actions
    actions.close()


def dead_item(engine, status: str = "dead") -> int:
    journal_id, _ = entry(engine)
    return exception_item(engine, journal_id, delivery(engine, journal_id, status=status))


def events(engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(
            AuditEvent.target_type.in_(("exception", "exception_bulk")))
            .order_by(AuditEvent.id)))


def item(engine, item_id: int) -> ExceptionItem:
    with Session(engine) as session:
        found = session.get(ExceptionItem, item_id)
        assert found is not None
        return found


def test_a_bulk_retry_acts_on_each_item_as_the_single_retry_does(engine, bulk):
    first, second = dead_item(engine), dead_item(engine)
    busy = dead_item(engine, status="retrying")  # the outbox still has it: refused
    job = bulk.start("retry", [first, second, busy, first], REASON, "olive")
    assert job.items == (first, second, busy)
    bulk.run(job)
    progress = bulk.progress(job.id)
    assert (progress.total, progress.done, progress.handled, progress.percent) == (3, 2, 3, 100)
    assert progress.finished and not progress.stopped
    [(refused_id, why)] = progress.refused
    assert refused_id == busy
    assert why == (f"delivery {item(engine, busy).delivery_id} is retrying, not dead: the "
                   "outbox still has it. Wait for its outcome, or resolve this item")
    assert set(delivery_statuses(engine).values()) == {"pending", "retrying"}
    trail = [(e.actor, e.action, e.target_type, e.target_id) for e in events(engine)]
    assert trail == [
        ("olive", "exception.bulk", "exception_bulk", job.id),
        ("olive", "exception.retry", "exception", str(first)),
        ("olive", "exception.retry", "exception", str(second)),
        ("olive", "exception.bulk_refused", "exception_bulk", job.id),
        ("olive", "exception.bulk_done", "exception_bulk", job.id)]
    retried = events(engine)[1]
    assert retried.detail["bulk"] == job.id and retried.detail["status"] == "retried"
    assert events(engine)[0].detail == {"action": "retry", "items": [first, second, busy],
                                        "total": 3}
    # The reason is kept on the item, never in the audit trail: it may name a patient.
    assert item(engine, first).detail["bulk"]["reason"] == REASON
    assert "SECRET-NAME" not in json.dumps([e.detail for e in events(engine)])
    assert AuditLog(engine).verify() == []


def test_a_bulk_retry_runs_oldest_first_whatever_order_they_were_ticked(engine, bulk):
    """Recovery procedures say "retry the dead letters in order": items ticked newest
    first (as the queue lists them) are retried oldest first, so each patient's
    messages arrive in the order they were sent."""
    items = [dead_item(engine) for _ in range(4)]
    ticked = [items[3], items[1], items[0], items[2]]
    job = bulk.start("retry", ticked, REASON, "olive")
    assert job.items == tuple(items)
    bulk.run(job)
    retried = [int(e.target_id) for e in events(engine) if e.action == "exception.retry"]
    assert retried == items
    assert item(engine, items[0]).detail["retry"]["by"] == "olive"
    resolved = bulk.start("resolve", ticked, REASON, "olive")
    assert resolved.items == tuple(ticked)  # only a retry's order matters to the chain


def test_progress_is_read_from_the_store_by_any_process(engine, bulk):
    items = [dead_item(engine) for _ in range(3)]
    job = bulk.start("retry", items, REASON, "olive")
    elsewhere = BulkActions(ExceptionQueue(engine), engine)  # another web process
    started = elsewhere.progress(job.id)
    assert (started.total, started.handled, started.percent, started.finished) == (
        3, 0, 0, False)
    assert (started.action, started.actor) == ("retry", "olive")
    ExceptionQueue(engine).retry(items[0], "olive", bulk=InBulk(job.id, REASON))
    ExceptionQueue(engine).retry(items[1], "adam")  # not the job's: not counted
    midway = elsewhere.progress(job.id)
    assert (midway.done, midway.percent, midway.finished) == (1, 33, False)
    with pytest.raises(NotFound, match="no bulk job"):
        elsewhere.progress("0" * 32)


def test_bulk_resolve_and_assign_keep_the_reason_on_each_item(engine, bulk):
    items = [dead_item(engine) for _ in range(2)]
    bulk.run(bulk.start("assign", items, REASON, "olive", assignee="anna"))
    assert [(item(engine, i).status, item(engine, i).assignee) for i in items] == [
        ("assigned", "anna")] * 2
    job = bulk.start("resolve", items, REASON, "olive")
    bulk.run(job)
    resolved = item(engine, items[0])
    assert resolved.status == "resolved"
    assert resolved.detail["resolution"]["reason"] == REASON
    assert resolved.detail["bulk"] == {"job": job.id, "reason": REASON, "by": "olive",
                                       "at": resolved.detail["bulk"]["at"]}
    assert bulk.progress(job.id).done == 2


def test_a_settled_item_is_refused_and_the_rest_go_on(engine, bulk):
    settled, waiting = dead_item(engine), dead_item(engine)
    ExceptionQueue(engine).resolve(settled, "done by hand", "olive")
    job = bulk.start("resolve", [settled, waiting, 999999], REASON, "olive")
    bulk.run(job)
    progress = bulk.progress(job.id)
    assert progress.done == 1
    assert [item_id for item_id, _ in progress.refused] == [settled, 999999]
    assert "no longer open" in progress.refused[0][1]


def test_a_job_stopped_midway_says_so_and_leaves_the_rest_open(engine, bulk):
    items = [dead_item(engine) for _ in range(2)]
    job = bulk.start("retry", items, REASON, "olive")
    bulk.close()  # the process stops before the job's thread gets to it
    bulk.run(job, stop=bulk._stop)
    progress = bulk.progress(job.id)
    assert (progress.finished, progress.stopped, progress.done) == (True, True, 0)
    assert {item(engine, i).status for i in items} == {"open"}


@pytest.mark.parametrize(("arguments", "refusal"), [
    (("undo", [1], REASON), "no bulk action 'undo'"),
    (("retry", [1], "  "), "needs a reason"),
    (("retry", [], REASON), "no items were chosen"),
    (("retry", list(range(1, MAX_ITEMS + 2)), REASON), "more than one bulk action takes"),
    (("assign", [1], REASON, "olive", "cora"), "'cora' \\(clinician\\) may not act"),
    (("assign", [1], REASON, "olive", None), "no such user"),
])
def test_a_job_that_cannot_run_is_refused_before_it_starts(engine, bulk, arguments,
                                                           refusal):
    name = arguments[3] if len(arguments) > 3 else "olive"
    with pytest.raises(Invalid, match=refusal):
        bulk.start(*arguments[:3], name, *arguments[4:])
    assert events(engine) == []


def test_a_launched_job_runs_on_its_own_thread(engine, bulk):
    items = [dead_item(engine) for _ in range(3)]
    job = bulk.start("retry", items, REASON, "olive")
    bulk.launch(job)
    finished = wait_until(lambda: bulk.progress(job.id).finished, what="the bulk job")
    assert finished and bulk.progress(job.id).done == 3
    assert {item(engine, i).status for i in items} == {"retried"}
