"""One destination that is down holds up only its own chains, on SQLite and PostgreSQL:
with the shipped configuration, ``lab-system`` (MLLP) on a port nobody listens on and
``analytics-warehouse`` POSTing to a real HTTP sink on 127.0.0.1, every analytics
delivery arrives, in order per patient, while the lab's deliveries wait behind their
retrying heads."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from engine.delivery_workers import DeliveryWorker
from engine.journal import Journal, Received, now_utc
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.store.migrate import upgrade
from engine.store.models import Delivery, JournalEntry
from tests.delivery_config import example_config, update
from tests.ports import free_port
from tests.recording_sink import RecordingSink

MESSAGES = 3000
PATIENTS = 50
LAB, ANALYTICS = "lab-system", "analytics-warehouse"


def patient(number: int) -> str:
    return f"MRN{number % PATIENTS}"


def backlog(engine: Engine) -> None:
    """``MESSAGES`` routed messages for ``PATIENTS`` patients, each with a pending
    delivery to the lab and one to analytics, as the pipeline writes them."""
    moment = now_utc()
    with engine.begin() as connection:
        ids = connection.execute(insert(JournalEntry).returning(
            JournalEntry.id, sort_by_parameter_order=True), [
            {"message_id": str(uuid.uuid4()), "received_at": moment,
             "source": "ehr-adt-feed", "patient_key": patient(number), "status": "routed",
             "size_bytes": 10, "raw": b"x"} for number in range(MESSAGES)]
        ).scalars().all()
        connection.execute(insert(Delivery), [
            {"journal_id": journal_id, "destination": destination,
             "patient_key": patient(number), "sequence": journal_id, "status": "pending",
             "idempotency_key": f"{journal_id}:{destination}", "payload": {},
             "attempts": 0, "media_type": media_type, "body": body, "created_at": moment,
             "updated_at": moment}
            for number, journal_id in enumerate(ids)
            for destination, media_type, body in (
                (LAB, "application/hl7-v2", update(f"S{number}", patient(number)).decode()),
                (ANALYTICS, "application/json", json.dumps({"sequence": journal_id})))])


def deliver_all(worker: DeliveryWorker) -> None:
    """Claim and send until a claim finds nothing it may send."""
    while worker.run_once():
        pass


def lab_statuses(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(session.scalars(
            select(Delivery.status).where(Delivery.destination == LAB)))


def sequences_by_key(engine: Engine) -> dict[str, tuple[str | None, int]]:
    with Session(engine) as session:
        return {row.idempotency_key: (row.patient_key, row.sequence) for row in session.execute(
            select(Delivery.idempotency_key, Delivery.patient_key, Delivery.sequence)
            .where(Delivery.destination == ANALYTICS))}


def assert_every_analytics_delivery_arrived_once(sink: RecordingSink) -> None:
    keys = sink.keys()
    assert len(keys) == len(set(keys)), "a delivery was sent twice"
    assert len(keys) == MESSAGES, f"{len(keys)} of {MESSAGES} analytics deliveries arrived"


def assert_in_order_per_patient(sink: RecordingSink, engine: Engine) -> None:
    known = sequences_by_key(engine)
    arrivals: dict[str | None, list[int]] = defaultdict(list)
    for received in sink.received:
        patient_key, sequence = known[received.key]
        arrivals[patient_key].append(sequence)
    assert len(arrivals) == PATIENTS
    for patient_key, sequences in arrivals.items():
        assert sequences == sorted(sequences), f"{patient_key} out of order"


def test_a_destination_that_is_down_holds_up_no_other(engine, tmp_path):
    """Regression (issue 13, item 3): a claim took the oldest --delivery-batch pending
    deliveries before it looked for chain heads, so the lab's blocked followers filled
    the window and only ~150 of 3,000 analytics deliveries were ever claimed."""
    sink = RecordingSink()
    sink.start()
    upgrade(engine)
    bootstrap(engine, example_config(tmp_path / "config", sink.url, free_port()))
    backlog(engine)
    worker = DeliveryWorker(engine, batch=100, concurrency=4)
    try:
        deliver_all(worker)
    finally:
        worker.close()
        sink.stop()
    assert_every_analytics_delivery_arrived_once(sink)
    assert_in_order_per_patient(sink, engine)
    # Each lab chain waits behind its head, which is retried as the policy says.
    assert lab_statuses(engine) == {"retrying": PATIENTS, "pending": MESSAGES - PATIENTS}


def test_a_destination_that_is_down_holds_up_no_other_end_to_end(engine, tmp_path):
    """Regression (issue 13, item 3), through the journal and the pipeline: 3,000 ADTs
    for 50 patients, routed by the shipped rules to the lab (down) and to analytics."""
    sink = RecordingSink()
    sink.start()
    upgrade(engine)
    bootstrap(engine, example_config(tmp_path / "config", sink.url, free_port()))
    journal = Journal(engine)
    try:
        waiting = [journal.submit(Received(update(f"E{number}", patient(number)),
                                           "ehr-adt-feed")) for number in range(MESSAGES)]
        for future in waiting:
            future.result()
    finally:
        journal.close()
    pipeline = Pipeline(engine)
    worker = DeliveryWorker(engine, batch=100, concurrency=4)
    try:
        while pipeline.run_once(500) or worker.run_once():
            pass
    finally:
        worker.close()
        sink.stop()
    assert_every_analytics_delivery_arrived_once(sink)
    assert_in_order_per_patient(sink, engine)
    assert lab_statuses(engine) == {"retrying": PATIENTS, "pending": MESSAGES - PATIENTS}
