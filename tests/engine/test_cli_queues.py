"""``switchboard exceptions`` and ``switchboard tasks`` on SQLite and PostgreSQL: the
``--as`` user's role is checked as the REST API checks it and named in the audit trail;
exit codes 0 ok, 1 refused, 2 usage."""

from __future__ import annotations

import io
import json
import sys

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.cli import main
from engine.security.audit import AuditLog
from engine.store.models import AuditEvent, Delivery
from tests.engine.test_exception_queue import held_chain
from tests.queue_rows import (
    delivery,
    delivery_statuses,
    entry,
    exception_item,
    held_review,
    outcome_events,
    prepared,
    referral_task,
    task,
)


@pytest.fixture
def url(engine) -> str:
    prepared(engine)
    return engine.url.render_as_string(hide_password=False)


def run(url: str, *argv: str) -> int:
    return main([*argv, "--database", url])


def dead_item(engine) -> tuple[int, int]:
    journal_id, _ = entry(engine)
    delivery_id = delivery(engine, journal_id)
    return exception_item(engine, journal_id, delivery_id), delivery_id


def actors(engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(e.actor, e.action) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.target_type.in_(("exception", "task")))
            .order_by(AuditEvent.id))]


def test_list_as_a_table_and_as_json_lines(engine, url, capsys):
    item_id, _ = dead_item(engine)
    assert run(url, "exceptions", "list", "--as", "carl") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "ERROR_CLASS", "CONNECTION", "ASSIGNEE",
                                "SUMMARY"]
    assert lines[1].split()[:5] == [str(item_id), "open", "transport_error",
                                    "clinic-north", "-"]
    assert run(url, "exceptions", "list", "--as", "olive", "--json",
               "--status", "open") == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["id"] == item_id
    assert run(url, "exceptions", "list", "--as", "olive", "--assignee", "x") == 0
    assert capsys.readouterr().out == "no exception items match\n"


def test_the_as_user_must_exist_and_hold_a_role_that_may(engine, url, capsys):
    item_id, _ = dead_item(engine)
    assert run(url, "exceptions", "retry", str(item_id), "--as", "nobody") == 1
    assert "no enabled user 'nobody'" in capsys.readouterr().err
    assert run(url, "exceptions", "retry", str(item_id), "--as", "anna") == 1
    err = capsys.readouterr().err
    assert "may not do this (exception.retry)" in err and "operator" in err
    assert run(url, "tasks", "list", "--as", "carl") == 1
    with pytest.raises(SystemExit) as exit_:
        main(["exceptions", "retry", str(item_id)])  # no --as
    assert exit_.value.code == 2
    assert actors(engine) == []


def test_retry_resolve_and_assign(engine, url, capsys):
    item_id, delivery_id = dead_item(engine)
    assert run(url, "exceptions", "retry", str(item_id), "--as", "olive") == 0
    assert capsys.readouterr().out == (
        f"exception {item_id} retried: delivery {delivery_id} pending\n")
    assert run(url, "exceptions", "retry", str(item_id), "--as", "olive") == 1
    assert "is retried, no longer open" in capsys.readouterr().err
    other, _ = dead_item(engine)
    assert run(url, "exceptions", "assign", str(other), "anna", "--as", "olive") == 0
    assert run(url, "exceptions", "assign", str(other), "cora", "--as", "olive") == 2
    assert "may not act" in capsys.readouterr().err
    assert run(url, "exceptions", "resolve", str(other), "--reason", "done", "--as",
               "adam", "--json") == 0
    out = capsys.readouterr().out
    assert json.loads(out)["status"] == "resolved"
    assert run(url, "exceptions", "show", "999", "--as", "olive") == 1
    assert actors(engine) == [("olive", "exception.retry"), ("olive", "exception.assign"),
                              ("adam", "exception.resolve")]


def test_show_says_what_waits_behind_and_skip_lets_it_go(engine, url, capsys):
    """Issue 14, item 2: a dead letter holding its chain says so in ``show``, and
    ``skip --reason`` lets the chain go on without it, as the ``--as`` user."""
    item_id, delivery_id, _ = held_chain(engine)
    assert run(url, "exceptions", "show", str(item_id), "--as", "carl") == 0
    assert 'waiting_behind: {"deliveries": 2}' in capsys.readouterr().out.splitlines()
    with pytest.raises(SystemExit) as exit_:
        run(url, "exceptions", "skip", str(item_id), "--as", "olive")  # no --reason
    assert exit_.value.code == 2
    capsys.readouterr()
    assert run(url, "exceptions", "skip", str(item_id), "--reason", "keyed in by hand",
               "--as", "anna") == 1
    assert "may not do this (exception.skip)" in capsys.readouterr().err
    assert run(url, "exceptions", "skip", str(item_id), "--reason", "keyed in by hand",
               "--as", "olive") == 0
    assert capsys.readouterr().out == (
        f"exception {item_id} skipped: 2 deliveries behind delivery {delivery_id} "
        "may go on\n")
    assert actors(engine) == [("olive", "exception.skip")]


def test_reprocess_from_a_file_or_stdin(engine, url, capsys, tmp_path, monkeypatch):
    item_id, delivery_id = dead_item(engine)
    edit = tmp_path / "edit.json"
    edit.write_text('{"a": 2}')
    assert run(url, "exceptions", "reprocess", str(item_id), "--file", str(edit),
               "--as", "anna") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"exception {item_id} reprocessed: replacement delivery ")
    assert out.endswith(" pending\n")
    with Session(engine) as session:
        bodies = dict(session.execute(select(Delivery.id, Delivery.body)).all())
    assert bodies[delivery_id] == '{"a": 1}' and '{"a": 2}' in bodies.values()
    journal_id, _ = entry(engine, status="failed")
    message_item = exception_item(engine, journal_id)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"PID|1||123")))
    assert run(url, "exceptions", "reprocess", str(message_item), "--file", "-",
               "--as", "anna") == 2
    assert "must start with an MSH segment" in capsys.readouterr().err
    assert run(url, "exceptions", "reprocess", str(message_item), "--file",
               str(tmp_path / "missing.hl7"), "--as", "anna") == 2


def test_tasks_show_approve_reject_and_complete(engine, url, capsys):
    task_id, journal_id = held_review(engine)
    assert run(url, "tasks", "list", "--as", "olive", "--queue", "nurse-review") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:5] == [
        str(task_id), "nurse-review", "abnormal-result-review", "hold", "open"]
    # An operator sees what the task is about, but not its payload (not audited: no PHI).
    assert run(url, "tasks", "show", str(task_id), "--as", "olive") == 0
    out = capsys.readouterr().out
    assert "queue: nurse-review" in out.splitlines()
    assert "payload: not shown: your role does not read this queue's payloads" in out
    assert "555-44-4444" not in out
    assert run(url, "tasks", "show", str(task_id), "--as", "cora", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["holds"][0]["status"] == "held" and shown["payload"]
    assert run(url, "tasks", "approve", str(task_id), "--as", "olive") == 1
    assert "may not do this (task.approve) in task queue 'nurse-review'" in (
        capsys.readouterr().err)
    assert run(url, "tasks", "approve", str(task_id), "--as", "abe") == 1
    assert run(url, "tasks", "approve", str(task_id), "--as", "cora", "--reason", "ok") == 0
    assert "held" not in delivery_statuses(engine, journal_id).values()
    assert run(url, "tasks", "reject", str(task_id), "--as", "cora", "--reason", "no") == 1
    notify = task(engine, journal_id, mode="notify", queue="escalations")
    assert run(url, "tasks", "complete", str(notify), "--as", "olive") == 0
    assert capsys.readouterr().out.endswith(f"task {notify} completed\n")
    assert actors(engine) == [("cora", "task.view"), ("cora", "task.approve"),
                              ("olive", "task.complete")]
    assert AuditLog(engine).verify() == []


def test_a_store_without_tables_is_a_usage_error(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["tasks", "list", "--as", "cora", "--database", url]) == 2
    assert "switchboard db upgrade" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ("exceptions", "show", str(2**63), "--as", "olive"),
    ("tasks", "approve", "0", "--as", "cora"),
    ("exceptions", "list", "--page", str(2**64), "--as", "olive"),
])
def test_an_id_the_store_cannot_hold_is_a_usage_error(url, capsys, argv):
    """An id past the store's range was handed to the driver (OverflowError on SQLite)."""
    with pytest.raises(SystemExit) as exit_:
        run(url, *argv)
    assert exit_.value.code == 2
    assert "runs from 1 to" in capsys.readouterr().err


def test_tasks_list_and_show_say_which_message_and_what_for(engine, url, capsys):
    """Issue 14, item 10: ``tasks list`` showed no control id or patient reference, and
    ``tasks show`` printed its payload as one line, without what the task is for."""
    task_id, _ = held_review(engine)
    assert run(url, "tasks", "list", "--as", "cora") == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert {"CONTROL_ID", "MESSAGE_ID", "PATIENT"} <= set(header.split())
    assert "CNTRL-3456" in row.split() and "555-44-4444" in row.split()
    # An operator sees which message, but no patient: the payload is not theirs.
    assert run(url, "tasks", "list", "--as", "olive") == 0
    listed = capsys.readouterr().out
    assert "CNTRL-3456" in listed and "555-44-4444" not in listed
    assert run(url, "tasks", "show", str(task_id), "--as", "cora") == 0
    shown = capsys.readouterr().out.splitlines()
    assert "for: Review abnormal results before they are written to the chart." in shown
    assert "control_id: CNTRL-3456" in shown
    # The payload is readable: one value per line, nested by indentation.
    assert "  patient:" in shown and any(line.strip() == "gender: female" for line in shown)


def test_complete_a_referral_with_its_state(engine, url, capsys):
    task_id, _ = referral_task(engine)
    assert run(url, "tasks", "complete", str(task_id), "--as", "cora") == 2
    assert "needs a state: one of accepted, declined, scheduled" in capsys.readouterr().err
    assert run(url, "tasks", "complete", str(task_id), "--as", "cora", "--state", "declined",
               "--reason", "not our service") == 0
    assert capsys.readouterr().out.endswith(f"task {task_id} completed as declined\n")
    assert [e.event for e in outcome_events(engine)] == ["completed"]


def test_tasks_unassign_gives_a_claim_back(engine, url, capsys):
    task_id, _ = held_review(engine)
    assert run(url, "tasks", "unassign", str(task_id), "--as", "cora") == 1
    assert "is not claimed by anyone" in capsys.readouterr().err
    assert run(url, "tasks", "assign", str(task_id), "cora", "--as", "cora") == 0
    assert run(url, "tasks", "unassign", str(task_id), "--as", "cora") == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"task {task_id} given back to its queue"
