"""Delivery workers on SQLite and PostgreSQL, through a real HTTP sink on 127.0.0.1:
journaled messages are routed, claimed, POSTed with their idempotency keys in order per
patient, and failures follow the policy into the exception queue."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from engine.delivery_workers import DeliveryWorker
from engine.encoders import outbound_control_id
from engine.exception_queue import ExceptionQueue
from engine.hl7v2 import parse
from engine.hl7v2.ack import AckError
from engine.ingest import Ingestor
from engine.journal import Journal, Received, now_utc
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.store.migrate import upgrade
from engine.store.models import Delivery, ExceptionItem, JournalEntry
from tests.delivery_config import SINK, delivery_config
from tests.delivery_config import update as message
from tests.engine.connectors.http_recorder import Reply, running
from tests.engine.connectors.test_mllp_sender import acknowledge, destination
from tests.faults import Together
from tests.recording_sink import RecordingSink


@pytest.fixture
def sink():
    with running() as recorder:
        yield recorder


@pytest.fixture
def workers(engine, tmp_path, sink):
    """Start the pieces for a sink at a URL; the workers' connections close after."""
    made: list[DeliveryWorker] = []

    def start(url: str, **options: Any) -> tuple[Ingestor, Pipeline, DeliveryWorker]:
        upgrade(engine)
        bootstrap(engine, delivery_config(tmp_path / "config", url, **options))
        made.append(DeliveryWorker(engine, batch=10))
        return Ingestor(Journal(engine)), Pipeline(engine), made[-1]

    yield start
    for worker in made:
        worker.close()


def drain(pipeline: Pipeline, worker: DeliveryWorker) -> None:
    while pipeline.run_once() or worker.run_once():
        pass


def deliveries(engine) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_messages_reach_the_sink_in_order_with_their_keys(engine, sink, workers):
    sb, pipeline, worker = workers(f"{sink.url}/events")
    for number in range(12):
        sb.ingest(Received(message(f"C{number}", f"MRN{number % 3}"), "ehr-adt-feed"))
    drain(pipeline, worker)
    rows = deliveries(engine)
    assert [r.status for r in rows] == ["delivered"] * 12
    keys = [r.headers["idempotency-key"] for r in sink.requests]
    assert sorted(keys) == sorted(r.idempotency_key for r in rows)
    # Per patient, the sink saw the messages in the order they were journaled.
    sent = [json.loads(r.body)["message"]["control_id"] for r in sink.requests]
    for patient in range(3):
        mine = [c for c in sent if int(c[1:]) % 3 == patient]
        assert mine == sorted(mine, key=lambda c: int(c[1:]))
    assert {r.path for r in sink.requests} == {"/events"}


def make_due(engine) -> None:
    """Time moves on: every retry (and what is parked behind it) is due now."""
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.next_attempt_at.is_not(None))
                           .values(next_attempt_at=now_utc()))


def sent(sink) -> list[str]:
    """The control ids the sink was sent, in order, failed attempts included."""
    return [json.loads(r.body)["message"]["control_id"] for r in sink.requests]


def test_under_skip_dead_a_dead_letter_blocks_nothing_behind_it(engine, sink, workers):
    """What every destination did before issue 14, item 2, now stated in its catalog
    entry: the dead letter no longer holds back the patient's next delivery."""
    sb, pipeline, worker = workers(f"{sink.url}/events", ordering="skip_dead")
    sink.script(Reply(503), Reply(503), Reply(503))
    sb.ingest(Received(message("C1", "MRN1"), "ehr-adt-feed"))
    sb.ingest(Received(message("C2", "MRN1"), "ehr-adt-feed"))
    for attempt in (1, 2):
        drain(pipeline, worker)
        first, second = deliveries(engine)
        assert (first.status, first.attempts) == ("retrying", attempt)
        # The second waits behind the first while the first is retried.
        assert second.status == "pending"
        make_due(engine)
    drain(pipeline, worker)
    first, second = deliveries(engine)
    assert (first.status, first.attempts, first.error_class) == ("dead", 3, "transport_error")
    assert second.status == "delivered"  # the dead letter no longer holds it back
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem)).one()
    assert (item.delivery_id, item.connection_id, item.owner_role) == (
        first.id, SINK, "operator")
    assert item.recovery_procedure == "Start the test sink again."
    assert len(sink.requests) == 4
    # Nothing of the message is in what operators read.
    assert "DOE" not in item.summary and "MRN1" not in item.summary


def dead_admission(engine, sink, workers):
    """An admission whose three attempts the destination refused, and the same
    patient's discharge behind it: (ingestor, pipeline, worker, dead letter's item)."""
    sb, pipeline, worker = workers(f"{sink.url}/events")
    sink.script(Reply(503), Reply(503), Reply(503))
    sb.ingest(Received(message("ADMIT", "MRN1", "A01"), "ehr-adt-feed"))
    sb.ingest(Received(message("DISCHARGE", "MRN1", "A03"), "ehr-adt-feed"))
    for _ in range(3):
        drain(pipeline, worker)
        make_due(engine)
    admit, discharge = deliveries(engine)
    assert (admit.status, discharge.status) == ("dead", "pending")
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem.id)).one()
    return sb, pipeline, worker, item


def test_under_strict_a_dead_letter_holds_its_chain_and_a_retry_delivers_in_order(
        engine, sink, workers):
    """Regression (issue 14, item 2): the discharge went out while the admission lay
    dead, and the admission's retry then arrived after the discharge. Under strict (the
    default) the discharge waits for the admission; another patient's message goes."""
    sb, pipeline, worker, item = dead_admission(engine, sink, workers)
    sb.ingest(Received(message("OTHER", "MRN2"), "ehr-adt-feed"))
    drain(pipeline, worker)
    assert sent(sink) == ["ADMIT"] * 3 + ["OTHER"]
    queue = ExceptionQueue(engine)
    assert queue.show(item)["waiting_behind"] == {"deliveries": 1}
    queue.retry(item, "olive")
    drain(pipeline, worker)
    assert sent(sink)[4:] == ["ADMIT", "DISCHARGE"]
    assert [d.status for d in deliveries(engine)] == ["delivered"] * 3


def test_a_skipped_dead_letter_lets_its_chain_go_on_without_it(engine, sink, workers):
    _, pipeline, worker, item = dead_admission(engine, sink, workers)
    ExceptionQueue(engine).skip(item, "the clinic registered the admission by hand",
                                "olive")
    drain(pipeline, worker)
    assert sent(sink) == ["ADMIT"] * 3 + ["DISCHARGE"]
    assert [d.status for d in deliveries(engine)] == ["dead", "delivered"]


def test_an_mllp_destination_answering_ar_is_rejected_and_routed_by_policy(
        engine, workers):
    with destination(acknowledge("AR", AckError(103, "Table value not found"))) as lis:
        # This policy retries nothing: what the destination refused goes to a person.
        sb, pipeline, worker = workers("http://127.0.0.1:9/unused", mllp_sink=lis.port,
                                       policy={"max_attempts": 1})
        sb.ingest(Received(message("C1", "MRN1"), "ehr-adt-feed"))
        sb.ingest(Received(message("C2", "MRN2"), "ehr-adt-feed"))
        drain(pipeline, worker)
        worker.close()  # the destination waits for its connections to end
        sent = [parse(frame).get("MSH-10") for frame in lis.received]
    first, second = deliveries(engine)
    assert (first.status, first.error_class, first.attempts) == ("dead", "rejected", 1)
    assert first.last_error.startswith(f"{SINK} answered AR: error 103")
    assert second.status == "delivered"
    assert sent == [outbound_control_id(first_message_id(engine, first), SINK),
                    outbound_control_id(first_message_id(engine, second), SINK)]
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem)).one()
    assert (item.delivery_id, item.error_class, item.owner_role) == (
        first.id, "rejected", "operator")


def first_message_id(engine, delivery: Delivery) -> str:
    with Session(engine) as session:
        return session.scalars(select(JournalEntry.message_id)
                               .where(JournalEntry.id == delivery.journal_id)).one()


def test_chains_go_out_side_by_side_each_still_in_order(engine, tmp_path):
    """Chains for different patients are sent at once by a worker's sending threads (the
    destination holds the first two POSTs until both are in), while each patient's
    messages still arrive one after another."""
    sink = RecordingSink(fault=(together := Together(2)))
    sink.start()
    upgrade(engine)
    bootstrap(engine, delivery_config(tmp_path / "config", sink.url))
    sb, pipeline = Ingestor(Journal(engine)), Pipeline(engine)
    worker = DeliveryWorker(engine, batch=50, concurrency=4)
    try:
        for number in range(16):
            sb.ingest(Received(message(f"C{number}", f"MRN{number % 4}"), "ehr-adt-feed"))
        drain(pipeline, worker)
    finally:
        worker.close()
        sink.stop()
    assert together.met.is_set() and sink.most_at_once >= 2
    sent = [int(r.body["message"]["control_id"][1:]) for r in sink.received]
    assert sorted(sent) == list(range(16))
    for patient in range(4):
        mine = [n for n in sent if n % 4 == patient]
        assert mine == sorted(mine)


def test_outcomes_the_store_refuses_together_are_recorded_one_by_one(engine, sink, workers):
    """Nothing stops the line (issue 13): a batch of outcomes the store refuses for one
    delivery's sake (here a fault injected into the first attempt to record the batch)
    was retried forever, so no delivery anywhere was ever recorded again. It is
    recorded one outcome at a time instead, and the pass ends."""
    sb, pipeline, worker = workers(f"{sink.url}/events")
    for number in range(3):
        sb.ingest(Received(message(f"R{number}", f"MRN{number}"), "ehr-adt-feed"))
    while pipeline.run_once():
        pass
    outbox = worker._outbox
    record = outbox.record

    def refusing(attempts, unsent, rule_set):
        if len(attempts) > 1:
            raise DataError("INSERT ...", {}, ValueError("value refused by the test"))
        return record(attempts, unsent, rule_set)

    outbox.record = refusing  # type: ignore[method-assign]
    finished = threading.Event()
    thread = threading.Thread(target=lambda: (worker.run_once(), finished.set()), daemon=True)
    thread.start()
    assert finished.wait(30), "the delivery pass never ended"
    assert [d.status for d in deliveries(engine)] == ["delivered"] * 3
