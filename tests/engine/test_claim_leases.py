"""Delivery workers keep their claims honest, on SQLite and PostgreSQL, through a real
HTTP destination on 127.0.0.1: each outcome is recorded as it happens (a slow send does
not keep finished deliveries in flight), a claim's lease is renewed while its chain is
being sent (a destination slower than the lease is not sent the same delivery by a
second engine), and an outcome whose claim was taken over changes nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.delivery_workers import DeliveryWorker
from engine.ingest import Ingestor
from engine.journal import Journal, Received, now_utc
from engine.outbox import Outbox
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.store.migrate import upgrade
from engine.store.models import Delivery
from tests.delivery_config import delivery_config
from tests.delivery_config import update as message
from tests.faults import Hold
from tests.recording_sink import RecordingSink
from tests.waiting import wait_until

LEASE = 3.0  # seconds: the test waits for it to lapse, renewed or not


@pytest.fixture
def held(engine, tmp_path):
    """A destination that holds its first POST until released, and the store routed
    for it."""
    hold = Hold(at=1)
    sink = RecordingSink(fault=hold)
    sink.start()
    upgrade(engine)
    bootstrap(engine, delivery_config(tmp_path / "config", sink.url))
    workers: list[DeliveryWorker] = []

    def worker() -> DeliveryWorker:
        workers.append(DeliveryWorker(engine, outbox=Outbox(engine, lease=LEASE), batch=10))
        return workers[-1]

    try:
        yield hold, sink, worker
    finally:
        hold.release()
        for made in workers:
            made.close()
        sink.stop()


def route(engine, *patients: str) -> None:
    ingest = Ingestor(Journal(engine))
    for number, patient in enumerate(patients):
        ingest.ingest(Received(message(f"C{number}", patient), "ehr-adt-feed"))
    pipeline = Pipeline(engine)
    while pipeline.run_once():
        pass


def rows(engine) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def in_background(work: Any) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_finished_delivery_is_recorded_while_a_slow_one_is_still_being_sent(engine, held):
    _, sink, worker = held
    route(engine, "MRN1", "MRN2")
    slow = Hold(at=2)  # the second patient's POST, after the first was answered
    sink.fault = slow
    one = worker()
    thread = in_background(one.run_once)
    try:
        assert slow.caught.wait(30)
        # Before, every outcome waited for the batch: the first stayed in flight.
        wait_until(lambda: rows(engine)[0].status == "delivered", 20,
                   "the answered delivery to be recorded")
        assert rows(engine)[1].status == "in_flight"
    finally:
        slow.release()
        thread.join(30)
    assert [d.status for d in rows(engine)] == ["delivered", "delivered"]


def test_a_slow_destination_gets_a_key_twice_only_after_its_claim_lapsed(engine, held):
    hold, sink, worker = held
    route(engine, "MRN1")
    first, second = worker(), worker()
    sending = in_background(first.run_once)
    assert hold.caught.wait(30)
    [claimed] = rows(engine)
    first_lease = claimed.next_attempt_at
    assert first_lease is not None

    def lapsed_twice_over() -> bool:
        second.run_once()  # another engine claims whatever it may
        return now_utc() > first_lease + 2 * (first_lease - claimed.updated_at)

    wait_until(lapsed_twice_over, 30, "the first lease to be long past")
    # The first worker is still sending: its renewed lease kept the second away.
    assert sink.posts == 1 and rows(engine)[0].status == "in_flight"
    assert rows(engine)[0].next_attempt_at > first_lease

    # The first worker's process dies (its renewals stop): now the claim lapses, and
    # the second engine sends the delivery again, with the same key.
    first.stop_renewing()
    wait_until(lambda: second.run_once() == 1, 30, "the lapsed claim to be taken over")
    [taken] = rows(engine)
    assert taken.status == "delivered" and sink.keys() == [taken.idempotency_key]
    # The first send is answered at last: its outcome is fenced out.
    hold.release()
    sending.join(30)
    [after] = rows(engine)
    assert (after.status, after.attempts, after.delivered_at, after.updated_at) == (
        taken.status, taken.attempts, taken.delivered_at, taken.updated_at)
    assert sink.keys() == [taken.idempotency_key] * 2
