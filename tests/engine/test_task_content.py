"""A task shows of its payload what its queue's data scope allows as published now:
a registration queue shows demographics, not results, even from a payload made under
a wider scope; the task's decision stays; a queue with no scope (escalations) or one
the catalog no longer holds shows its payload as made. The work queue's ``show`` and
listing both go through it, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import insert

from engine.journal import now_utc
from engine.rules.catalog_entry import Connection
from engine.store.models import Task
from engine.task_content import QueueScopes
from engine.work_queue import WorkQueue
from tests.queue_rows import ROOT, as_, entry, prepared

RECORD = {
    "message": {"type": "ORU", "event": "R01"},
    "patient": {"identifiers": [{"value": "MRN-1"}], "names": [{"family": "DOE"}],
                "birth_date": "1980-01-01"},
    "results": [{"code": "1554-5", "value": {"type": "NM", "number": 182},
                 "abnormal_flags": ["H"]}],
    "decision": {"outcome": "completed", "by": "rita"},
}


def shipped_task_queues() -> list[Connection]:
    folder = ROOT / "catalog" / "connections"
    return [Connection.from_dict(yaml.safe_load(path.read_text()))
            for path in sorted(folder.glob("*.yaml"))]


@pytest.mark.parametrize(("queue", "kept"), [
    ("identity-review", {"message", "patient", "decision"}),
    ("nurse-review", {"message", "patient", "results", "decision"}),
    ("escalations", {"message", "patient", "results", "decision"}),  # no scope
    ("retired", {"message", "patient", "results", "decision"}),  # not in the catalog
])
def test_a_payload_is_cut_to_its_queues_scope(queue, kept):
    shown = QueueScopes.of(shipped_task_queues()).cut(queue, RECORD)
    assert set(shown) == kept
    assert shown["decision"] == RECORD["decision"]


def test_a_scope_keeps_only_the_paths_it_names():
    shown = QueueScopes.of(shipped_task_queues()).cut("scheduling-desk", RECORD)
    assert shown["patient"] == {"identifiers": [{"value": "MRN-1"}],
                                "names": [{"family": "DOE"}]}  # no birth date
    assert QueueScopes().cut("anything", None) == {}


def test_a_registration_queue_shows_demographics_not_results(engine):
    prepared(engine)
    journal_id, _ = entry(engine)
    with engine.begin() as connection:
        task_id = connection.execute(insert(Task).values(
            journal_id=journal_id, queue="identity-review", kind="merge-review", mode="hold",
            row_id="row-a", status="open", payload=RECORD, created_at=now_utc())
        ).inserted_primary_key[0]
    work = WorkQueue(engine)
    payload = work.show(task_id, as_("rita"))["payload"]
    assert payload["patient"]["names"] == [{"family": "DOE"}]
    assert "results" not in payload
    [listed] = work.list(viewer=as_("rita")).items
    assert listed["patient"] == "MRN-1"
