"""The task-queue sink on SQLite and PostgreSQL: a delivery becomes one task in the
built-in work queue, linked to its message; sending it again (its outcome was lost)
finds that task instead of adding a second."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

import engine.connectors.task_queue  # noqa: F401 - registers the sink
from engine.connectors import ConnectorError
from engine.connectors.sink import Outbound, sink_factory
from engine.journal import now_utc
from engine.rules.catalog_entry import Connection
from engine.store.migrate import upgrade
from engine.store.models import JournalEntry, Task

QUEUE_ENTRY = {
    "id": "nurse-review", "name": "Nurse review queue", "direction": "outbound",
    "transport": "task-queue", "endpoint": {"queue": "nurse-review"},
    "format": "canonical-json",
}


def outbound(engine, body: str = '{"patient": {"gender": "female"}}',
             media_type: str = "application/json") -> Outbound:
    with engine.begin() as connection:
        journal_id = connection.execute(insert(JournalEntry).values(
            message_id=str(uuid.uuid4()), received_at=now_utc(), source="ehr-adt-feed",
            status="routed", size_bytes=1, raw=b"x")).inserted_primary_key[0]
    return Outbound(1, journal_id, "m-1", "nurse-review", "m-1:nurse-review", media_type,
                    body, received_at=now_utc())


def tasks(engine) -> list[Task]:
    with Session(engine) as session:
        return list(session.scalars(select(Task)))


def test_a_delivery_becomes_one_task_even_when_sent_twice(engine):
    upgrade(engine)
    sink = sink_factory("task-queue")(Connection.from_dict(QUEUE_ENTRY), engine)
    delivery = outbound(engine)
    sink.send(delivery)
    sink.send(delivery)  # a retry after a lost outcome
    (task,) = tasks(engine)
    assert (task.queue, task.kind, task.mode, task.status, task.journal_id) == (
        "nurse-review", "delivery", "work", "open", delivery.journal_id)
    assert task.payload == {"patient": {"gender": "female"}}
    assert task.idempotency_key == "m-1:nurse-review"


def test_a_body_that_is_not_json_is_kept_as_text(engine):
    upgrade(engine)
    sink = sink_factory("task-queue")(Connection.from_dict(QUEUE_ENTRY), engine)
    sink.send(outbound(engine, "MSH|^~\\&|...", "application/hl7-v2"))
    (task,) = tasks(engine)
    assert task.payload == {"media_type": "application/hl7-v2", "body": "MSH|^~\\&|..."}


def test_the_factory_refuses_an_endpoint_without_a_queue(engine):
    entry = {**QUEUE_ENTRY, "transport": "http", "endpoint": {"url": "http://127.0.0.1:9/x"}}
    with pytest.raises(ConnectorError, match="needs an endpoint with a queue"):
        sink_factory("task-queue")(Connection.from_dict(entry), engine)
