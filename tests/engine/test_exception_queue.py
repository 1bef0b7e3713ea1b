"""The exception queue on SQLite and PostgreSQL: listing and showing without message
content; assign, resolve, retry and reprocess, each checked against the item's state
in its own transaction and audited with ids and statuses only."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import encoders
from engine.exception_queue import ExceptionQueue
from engine.hl7v2 import parse
from engine.journal import Journal, Received, now_utc, patient_key_of
from engine.message_log import MessageLog
from engine.outbox import Attempt, Outbox
from engine.pipeline import Pipeline
from engine.queues import Invalid, NotFound, Refused
from engine.security.audit import AuditLog
from engine.store.models import AuditEvent, Delivery, ExceptionItem, JournalEntry, StageEvent
from tests.delivery_config import update
from tests.engine.store.test_outbox import REJECTED, RULES
from tests.queue_rows import delivery, entry, exception_item, ingest, prepared, sample

ADMISSION = "fhir-converter/ADT-A01-01.hl7"


@pytest.fixture
def queue(engine) -> ExceptionQueue:
    prepared(engine)
    return ExceptionQueue(engine)


def dead_delivery_item(engine, **options) -> tuple[int, int]:
    """An open item for a dead delivery: (item id, delivery id)."""
    journal_id, _ = entry(engine)
    delivery_id = delivery(engine, journal_id, **options)
    return exception_item(engine, journal_id, delivery_id), delivery_id


def failed_message(engine, monkeypatch) -> tuple[int, str]:
    """A message the pipeline failed on (a defect in an encoder), with its exception:
    (item id, message id). The defect is gone again when this returns."""
    def broken(_record, _delivery):
        raise KeyError("a defect")

    monkeypatch.setitem(encoders.ENCODERS, "canonical-json", broken)
    message_id = ingest(engine, sample(ADMISSION))
    assert Pipeline(engine).run_once() == 1
    monkeypatch.undo()
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem)).one()
    return item.id, message_id


def audit_events(engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(
            AuditEvent.target_type == "exception").order_by(AuditEvent.id)))


def journal_status(engine, message_id: str) -> str:
    with Session(engine) as session:
        return session.scalars(select(JournalEntry.status).where(
            JournalEntry.message_id == message_id)).one()


def test_list_filters_pages_and_refuses_unknown_filters(engine, queue):
    journal_id, _ = entry(engine)
    first = exception_item(engine, journal_id)
    second = exception_item(engine, journal_id, assignee="olive", status="assigned")
    exception_item(engine, journal_id, status="resolved", connection_id="lab-system")
    listed = queue.list({"status": "assigned"})
    assert [item["id"] for item in listed.items] == [second]
    assert [i["id"] for i in queue.list({"assignee": "olive"}).items] == [second]
    assert queue.list({"connection": "lab-system"}).total == 1
    page = queue.list({}, page=2, per_page=2)
    assert (page.total, [i["id"] for i in page.items]) == (3, [first])
    with pytest.raises(Invalid, match="unknown filter 'patient'"):
        queue.list({"patient": "x"})
    with pytest.raises(Invalid, match="page and per_page"):
        queue.list({}, page=0)


def test_show_names_the_delivery_and_message_without_content(engine, queue):
    item_id, delivery_id = dead_delivery_item(engine, body='{"name": "SECRET-NAME"}')
    view = queue.show(item_id)
    assert view["delivery"] == {
        "id": delivery_id, "destination": "clinic-north", "status": "dead", "attempts": 5,
        "error_class": "transport_error", "last_error": "connection refused",
        "idempotency_key": view["delivery"]["idempotency_key"]}
    assert view["message_id"] and view["replacement"] is None
    assert "SECRET-NAME" not in json.dumps(view)
    with pytest.raises(NotFound, match="no exception 999"):
        queue.show(999)


def test_assign_to_someone_who_may_act_and_audit_it(engine, queue):
    item_id, _ = dead_delivery_item(engine)
    view = queue.assign(item_id, "anna", "olive")
    assert (view["status"], view["assignee"]) == ("assigned", "anna")
    assert queue.assign(item_id, "olive", "olive")["assignee"] == "olive"  # re-assigned
    with pytest.raises(Invalid, match="'cora' \\(clinician\\) may not act"):
        queue.assign(item_id, "cora", "olive")
    with pytest.raises(Invalid, match="no such user: 'nobody'"):
        queue.assign(item_id, "nobody", "olive")
    events = audit_events(engine)
    assert [(e.actor, e.action, e.target_id, e.detail) for e in events] == [
        ("olive", "exception.assign", str(item_id), {"status": "assigned", "assignee": "anna"}),
        ("olive", "exception.assign", str(item_id), {"status": "assigned", "assignee": "olive"})]
    assert AuditLog(engine).verify() == []


def test_resolve_keeps_the_reason_on_the_item_not_in_the_audit_trail(engine, queue):
    item_id, _ = dead_delivery_item(engine)
    with pytest.raises(Invalid, match="needs a reason"):
        queue.resolve(item_id, "  ", "olive")
    view = queue.resolve(item_id, "phoned the clinic about SECRET-NAME", "olive")
    assert view["status"] == "resolved" and view["resolved_at"]
    assert view["detail"]["resolution"]["reason"] == "phoned the clinic about SECRET-NAME"
    (event,) = audit_events(engine)
    assert (event.action, event.detail) == ("exception.resolve", {"status": "resolved"})
    with pytest.raises(Refused, match=f"exception {item_id} is resolved"):
        queue.resolve(item_id, "again", "olive")
    with pytest.raises(Refused):
        queue.assign(item_id, "olive", "olive")


def test_retry_puts_a_dead_delivery_back_in_the_outbox(engine, queue):
    item_id, delivery_id = dead_delivery_item(engine)
    view = queue.retry(item_id, "olive")
    assert (view["status"], view["delivery"]["status"]) == ("retried", "pending")
    with Session(engine) as session:
        row = session.get(Delivery, delivery_id)
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, None)
        assert session.get(ExceptionItem, item_id).resolved_at is not None
    (event,) = audit_events(engine)
    assert (event.action, event.detail) == ("exception.retry", {
        "status": "retried", "delivery_id": delivery_id, "delivery_status": "pending",
        "attempts_before": 5})
    with pytest.raises(Refused, match="is retried, no longer open"):
        queue.retry(item_id, "olive")


def test_a_retry_keeps_who_why_and_the_attempts_it_starts_afresh(engine, queue):
    """The outbox counts a retried delivery's attempts from nought: the count that ran
    out stays on the item, with who retried it, when and why (the reason on the item,
    never in the audit trail: free text may name a patient)."""
    item_id, _ = dead_delivery_item(engine, attempts=3)
    with pytest.raises(Invalid, match="a retry needs a reason"):
        queue.retry(item_id, "olive", reason="  ")
    view = queue.retry(item_id, "olive", reason="SECRET-NAME's ward says it is back")
    note = view["detail"]["retry"]
    assert (note["by"], note["reason"], note["attempts_before"]) == (
        "olive", "SECRET-NAME's ward says it is back", 3)
    assert note["at"] == view["resolved_at"]
    assert view["delivery"]["attempts"] == 0
    (event,) = audit_events(engine)
    assert "SECRET-NAME" not in json.dumps(event.detail)


def test_oldest_first_orders_items_as_their_deliveries_go_out(engine, queue):
    """A retry of many sends them in the outbox's order (sequence, then id), however
    they were ticked: the item raised last may be for the earliest delivery."""
    journals = [entry(engine)[0] for _ in range(3)]
    deliveries = [delivery(engine, journal_id) for journal_id in journals]
    items = [exception_item(engine, journal_id, delivery_id) for journal_id, delivery_id
             in reversed(list(zip(journals, deliveries, strict=True)))]  # newest raised first
    failed, _ = entry(engine, status="failed")
    message_item = exception_item(engine, failed)
    assert queue.oldest_first([message_item, *items, 999999, items[0]]) == [
        *reversed(items), message_item, 999999]


@pytest.mark.parametrize(("status", "body", "refusal"), [
    ("delivered", '{"a": 1}', "was delivered; there is nothing to retry"),
    ("retrying", '{"a": 1}', "is retrying, not dead: the outbox still has it"),
    ("failed", None, r"has no encoded body to send again\. Use reprocess"),
])
def test_retry_refuses_a_delivery_it_cannot_send_again(engine, queue, status, body, refusal):
    item_id, _ = dead_delivery_item(engine, status=status, body=body)
    with pytest.raises(Refused, match=refusal):
        queue.retry(item_id, "olive")
    assert queue.show(item_id)["status"] == "open"
    assert audit_events(engine) == []


def test_retry_routes_a_failed_message_again(engine, queue, monkeypatch):
    item_id, message_id = failed_message(engine, monkeypatch)
    view = queue.retry(item_id, "olive")
    assert (view["status"], view["message_id"]) == ("retried", message_id)
    assert journal_status(engine, message_id) == "received"
    assert Pipeline(engine).run_once() == 1  # with the defect gone, it is routed
    assert journal_status(engine, message_id) == "routed"
    with Session(engine) as session:
        stages = session.scalars(select(StageEvent.stage).join(JournalEntry).where(
            JournalEntry.message_id == message_id).order_by(StageEvent.id)).all()
    assert "requeued" in stages and stages[-1] == "intents_recorded"
    assert audit_events(engine)[0].detail == {
        "status": "retried", "message_id": message_id, "journal_status": "received"}


def test_retry_refuses_a_routed_message_and_says_to_reprocess(engine, queue):
    journal_id, message_id = entry(engine, status="routed")
    item_id = exception_item(engine, journal_id)
    with pytest.raises(Refused, match=f"message {message_id} was routed.*Use reprocess"):
        queue.retry(item_id, "olive")
    rejected, _ = entry(engine, status="rejected")
    with pytest.raises(Refused, match="same bytes would fail again"):
        queue.retry(exception_item(engine, rejected), "olive")


def test_reprocess_a_delivery_keeps_the_original_and_adds_the_edit(engine, queue):
    item_id, delivery_id = dead_delivery_item(engine, body='{"a": 1}')
    view = queue.reprocess(item_id, '{"a": 2}', "anna")
    replacement_id = view["replacement"]["delivery_id"]
    assert (view["status"], view["replacement"]["status"]) == ("reprocessed", "pending")
    assert view["detail"]["replacement_delivery_id"] == replacement_id
    with Session(engine) as session:
        original = session.get(Delivery, delivery_id)
        edit = session.get(Delivery, replacement_id)
        assert (original.status, original.body) == ("dead", '{"a": 1}')
        assert (edit.status, edit.body, edit.attempts) == ("pending", '{"a": 2}', 0)
        assert edit.idempotency_key == f"{original.idempotency_key}:edit1"
        assert (edit.journal_id, edit.destination, edit.sequence, edit.payload) == (
            original.journal_id, original.destination, original.sequence, original.payload)
    # Another item on the same delivery makes the second edit.
    again = exception_item(engine, original.journal_id, delivery_id)
    second = queue.reprocess(again, b'{"a": 3}', "olive")["replacement"]["delivery_id"]
    with Session(engine) as session:
        assert session.get(Delivery, second).idempotency_key.endswith(":edit2")
    first_event, _ = audit_events(engine)
    assert first_event.detail == {"status": "reprocessed", "delivery_id": delivery_id,
                                  "replacement_delivery_id": replacement_id}
    assert '"a": 2' not in json.dumps(first_event.detail)


def test_reprocess_refuses_a_body_its_destination_cannot_read(engine, queue):
    item_id, _ = dead_delivery_item(engine)
    with pytest.raises(Invalid, match="not JSON \\(Expecting value, line 1 column 1\\)"):
        queue.reprocess(item_id, "not json", "olive")
    hl7_item, _ = dead_delivery_item(engine, media_type="application/hl7-v2", body="MSH|")
    with pytest.raises(Invalid, match=r"not HL7 v2: .*must start with an MSH segment"):
        queue.reprocess(hl7_item, "PID|1", "olive")
    with pytest.raises(Invalid, match="empty"):
        queue.reprocess(item_id, "", "olive")
    assert {queue.show(i)["status"] for i in (item_id, hl7_item)} == {"open"}


def test_reprocess_a_failed_message_journals_the_edit_beside_it(engine, queue, monkeypatch):
    item_id, message_id = failed_message(engine, monkeypatch)
    edited = parse(sample(ADMISSION))
    edited.set("EVN-1", "A01")  # same MSH-10: the edit must not meet the dedupe index
    view = queue.reprocess(item_id, edited.encode().decode(), "anna")
    new_id = view["replacement"]["message_id"]
    assert (view["status"], view["replacement"]["status"]) == ("reprocessed", "received")
    assert Pipeline(engine).run_once() == 1
    with Session(engine) as session:
        original = session.scalars(select(JournalEntry).where(
            JournalEntry.message_id == message_id)).one()
        copy = session.scalars(select(JournalEntry).where(
            JournalEntry.message_id == new_id)).one()
        first_stage = session.scalars(select(StageEvent).where(
            StageEvent.journal_id == copy.id).order_by(StageEvent.id)).first()
    assert (original.status, original.raw) == ("failed", sample(ADMISSION))
    assert (copy.status, copy.is_original, copy.source) == ("routed", False, "ehr-adt-feed")
    assert (copy.control_id, copy.message_type, copy.event) == (
        original.control_id, "ADT", "A01")
    assert copy.patient_key == original.patient_key
    assert (first_stage.stage, first_stage.detail["message_id"]) == (
        "reprocessed_from", message_id)
    assert audit_events(engine)[0].detail == {
        "status": "reprocessed", "message_id": message_id, "replacement_message_id": new_id}


def test_reprocess_refuses_an_unreadable_message_or_one_already_sent(engine, queue,
                                                                    monkeypatch):
    item_id, _ = failed_message(engine, monkeypatch)
    with pytest.raises(Invalid, match=r"cannot be read: .*must start with an MSH segment"):
        queue.reprocess(item_id, "PID|1||123", "anna")
    assert queue.show(item_id)["status"] == "open"
    journal_id, message_id = entry(engine)
    delivery(engine, journal_id, status="delivered")
    delivery(engine, journal_id, destination="lab-system", status="pending")
    sent = exception_item(engine, journal_id)
    with pytest.raises(Refused, match=f"message {message_id} already has deliveries "
                                      "\\(1 delivered, 1 pending\\)"):
        queue.reprocess(sent, sample(ADMISSION), "anna")


def test_reprocess_a_rejected_fhir_resource_with_its_fix(engine, queue):
    patient = {"resourceType": "Patient", "gender": "female", "birthDate": "02/04/1961",
               "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "M-1"}]}
    journal = Journal(engine)
    try:
        journal.record(Received(json.dumps(patient).encode(), "portal-fhir",
                                format="fhir-r4"))
    finally:
        journal.close()
    item_id = queue.list({"connection": "portal-fhir"}).items[0]["id"]
    with pytest.raises(Refused, match="was rejected when received"):
        queue.retry(item_id, "olive")
    with pytest.raises(Invalid, match=r"cannot be read: Patient\.birthDate"):
        queue.reprocess(item_id, json.dumps(patient), "anna")
    patient["birthDate"] = "1961-04-02"
    new_id = queue.reprocess(item_id, json.dumps(patient), "anna")["replacement"]["message_id"]
    with Session(engine) as session:
        copy = session.scalars(select(JournalEntry).where(
            JournalEntry.message_id == new_id)).one()
    assert (copy.format, copy.message_type, copy.status) == ("fhir-r4", "Patient", "received")
    assert copy.patient_key


def test_two_people_retrying_at_once_retry_once(engine, queue):
    item_id, _ = dead_delivery_item(engine)
    outcomes: list[str] = []

    def retry() -> None:
        try:
            queue.retry(item_id, "olive")
            outcomes.append("retried")
        except Refused:
            outcomes.append("refused")

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["refused"] * 3 + ["retried"]
    assert len(audit_events(engine)) == 1
    assert AuditLog(engine).verify() == []


def held_chain(engine) -> tuple[int, int, list[int]]:
    """A delivery the outbox dead-lettered under strict ordering, with two of its
    patient's later deliveries to the same destination behind it: (item id, dead
    delivery id, the ids behind it)."""
    head, *behind = [delivery(engine, entry(engine)[0], status="pending", attempts=0)
                     for _ in range(3)]
    outbox = Outbox(engine, lease=60)
    (chain,) = outbox.claim(limit=10)
    outbox.record([Attempt(chain[0], now_utc(), REJECTED)], chain[1:], RULES)
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem.id).where(
            ExceptionItem.delivery_id == head)).one()
    return item, head, behind


@pytest.mark.parametrize("action", ["retry", "reprocess", "skip", "resolve"])
def test_each_way_out_of_a_dead_letter_releases_its_chain_in_order(engine, queue, action):
    """Issue 14, item 2: under strict ordering a dead letter holds its chain, and the
    item says how many deliveries wait behind it, until an operator retries it (it goes
    first), reprocesses it (its edit goes first), skips or resolves it (the rest go)."""
    item_id, head, behind = held_chain(engine)
    outbox = Outbox(engine, lease=60)
    assert outbox.claim(limit=10) == []
    shown = queue.show(item_id)
    assert shown["waiting_behind"] == {"deliveries": 2}
    with Session(engine) as session:
        ids_behind = [session.scalar(select(JournalEntry.message_id).join(
            Delivery, Delivery.journal_id == JournalEntry.id).where(Delivery.id == d))
            for d in behind]
    assert [m["message_id"] for m in shown["behind"]] == ids_behind
    first: list[int] = []
    if action == "retry":
        queue.retry(item_id, "olive")
        first = [head]
    elif action == "reprocess":
        view = queue.reprocess(item_id, '{"a": 2}', "anna")
        first = [view["replacement"]["delivery_id"]]
    elif action == "skip":
        queue.skip(item_id, "the clinic keyed it in by hand", "olive")
    else:
        queue.resolve(item_id, "the clinic keyed it in by hand", "olive")
    assert queue.show(item_id)["waiting_behind"] is None
    assert queue.show(item_id)["behind"] == []
    assert [[c.id for c in chain] for chain in outbox.claim(limit=10)] == [[*first, *behind]]


def test_skip_needs_a_reason_keeps_it_on_the_item_and_is_audited(engine, queue):
    item_id, _, _ = held_chain(engine)
    with pytest.raises(Invalid, match="a skip needs a reason"):
        queue.skip(item_id, "  ", "olive")
    view = queue.skip(item_id, "SECRET-NAME was admitted by phone", "olive")
    assert (view["status"], view["delivery"]["status"]) == ("skipped", "dead")
    assert view["resolved_at"]
    assert view["detail"]["skip"]["reason"] == "SECRET-NAME was admitted by phone"
    (event,) = audit_events(engine)
    assert (event.actor, event.action, event.target_id, event.detail) == (
        "olive", "exception.skip", str(item_id),
        {"status": "skipped", "released": {"deliveries": 2}})
    assert AuditLog(engine).verify() == []
    with pytest.raises(Refused, match=f"exception {item_id} is skipped, no longer open"):
        queue.skip(item_id, "again", "olive")


def test_skip_refuses_an_item_that_holds_nothing_back(engine, queue):
    """A dead letter under skip_dead, a message routed with a problem: nothing waits
    behind them, so there is nothing to skip; resolving them is what is left."""
    item_id, _ = dead_delivery_item(engine)
    assert queue.show(item_id)["waiting_behind"] is None
    with pytest.raises(Refused, match=f"exception {item_id} holds nothing back") as caught:
        queue.skip(item_id, "nothing to hold", "olive")
    assert "Resolve" in (caught.value.hint or "")
    assert queue.show(item_id)["status"] == "open"
    assert audit_events(engine) == []


def failing_for(monkeypatch, message_id: str) -> None:
    """A defect in the canonical JSON encoder that fails one message (in the pipeline,
    before any delivery exists) and no other, until ``monkeypatch.undo()``."""
    real = encoders.ENCODERS["canonical-json"]

    def encode(record, delivery):
        if delivery.message_id == message_id:
            raise KeyError("a defect")
        return real(record, delivery)

    monkeypatch.setitem(encoders.ENCODERS, "canonical-json", encode)


def statuses_by_control_id(engine) -> dict[str, tuple[str, str | None]]:
    with Session(engine) as session:
        return {row.control_id: (row.status, row.status_reason) for row in session.execute(
            select(JournalEntry.control_id, JournalEntry.status, JournalEntry.status_reason)
            .order_by(JournalEntry.id))}


def warehouse_chain(engine) -> list[str]:
    """The control ids of MRN1's deliveries to analytics-warehouse (every event goes
    there) as the outbox claims them: in the order the destination receives them."""
    mrn1 = patient_key_of("MRN1", "RIVERSIDE")
    with Session(engine) as session:
        control_ids = dict(session.execute(
            select(JournalEntry.id, JournalEntry.control_id)).all())
    chains = Outbox(engine, lease=60).claim(limit=100)
    (chain,) = [chain for chain in chains if chain[0].destination == "analytics-warehouse"
                and chain[0].patient_key == mrn1]
    return [control_ids[claimed.journal_id] for claimed in chain]


@pytest.mark.parametrize("action", ["retry", "reprocess", "skip", "resolve"])
def test_a_message_failed_in_the_pipeline_holds_its_patients_later_messages_from_its_source(
        engine, queue, monkeypatch, action):
    """Regression (issue 14, item 2): a message that failed in the pipeline held nothing
    back, so the patient's discharge was routed while the admission lay failed, and
    reprocessing the admission delivered it after the discharge. Under strict ordering
    the patient's later messages from the same source are held before routing, with the
    reason, and the exception item says how many wait; once the admission is retried or
    reprocessed it is routed first, and once it is skipped or resolved they go on.
    Other patients, and the same patient's messages from other sources, flow."""
    admit = ingest(engine, update("ADMIT", "MRN1", "A01"))
    ingest(engine, update("DISCHARGE", "MRN1", "A03"))
    ingest(engine, update("OTHER", "MRN2", "A01"))
    ingest(engine, update("ELSEWHERE", "MRN1", "A08"), source="partner-referrals")
    failing_for(monkeypatch, admit)
    Pipeline(engine).run_once()  # one pass: the discharge comes right behind the failure
    ingest(engine, update("LATER", "MRN1", "A08"))
    Pipeline(engine).run_once()  # a pass of its own: the hold is found in the store
    found = statuses_by_control_id(engine)
    assert {c: status for c, (status, _) in found.items()} == {
        "ADMIT": "failed", "DISCHARGE": "held", "OTHER": "routed", "ELSEWHERE": "routed",
        "LATER": "held"}
    for held in ("DISCHARGE", "LATER"):
        reason = found[held][1] or ""
        assert admit in reason and "failed in the pipeline" in reason, reason
    listed = MessageLog(engine).list({"status": "held"}).items
    assert sorted(m["control_id"] for m in listed) == ["DISCHARGE", "LATER"]
    assert all(admit in m["status_reason"] for m in listed)
    (item,) = queue.list({"status": "open"}).items
    assert queue.show(item["id"])["waiting_behind"] == {"messages": 2}
    monkeypatch.undo()  # the defect is fixed

    first: list[str] = []
    if action == "retry":
        queue.retry(item["id"], "olive")
        first = ["ADMIT"]
    elif action == "reprocess":
        edited = parse(update("ADMIT", "MRN1", "A01"))
        edited.set("PV1-2", "I")  # the analyst's fix: an inpatient admission
        queue.reprocess(item["id"], edited.encode(), "anna")
        first = ["ADMIT"]  # the edited copy, in the original's place
    elif action == "skip":
        queue.skip(item["id"], "admitted by phone", "olive")
    else:
        queue.resolve(item["id"], "admitted by phone", "olive")
    while Pipeline(engine).run_once():
        pass
    assert {c: status for c, (status, _) in statuses_by_control_id(engine).items()
            if c != "ADMIT"} == dict.fromkeys(("DISCHARGE", "OTHER", "ELSEWHERE", "LATER"),
                                              "routed")
    assert queue.show(item["id"])["waiting_behind"] is None
    # ELSEWHERE came from another source: it never waited, and keeps its place.
    assert warehouse_chain(engine) == [*first, "DISCHARGE", "ELSEWHERE", "LATER"]
    if action == "skip":
        (event,) = audit_events(engine)
        assert (event.action, event.detail) == (
            "exception.skip", {"status": "skipped", "released": {"messages": 2}})


def test_an_item_names_the_recovery_actions_open_to_it(engine, queue):
    """Issue 14, item 2: the item's recovery actions include skip while something
    waits behind it; a settled item offers none."""
    item_id, _, _ = held_chain(engine)
    assert queue.show(item_id)["recovery_actions"] == [
        "assign", "retry", "reprocess", "skip", "resolve"]
    lone, _ = dead_delivery_item(engine)
    assert queue.show(lone)["recovery_actions"] == ["assign", "retry", "reprocess", "resolve"]
    queue.skip(item_id, "the clinic keyed it in by hand", "olive")
    assert queue.show(item_id)["recovery_actions"] == []


def test_a_retry_of_messages_takes_their_dead_deliveries_and_failed_messages(engine, queue):
    journal_id, message_id = entry(engine)
    dead = exception_item(engine, journal_id, delivery(engine, journal_id, status="dead"))
    exception_item(engine, journal_id, delivery(engine, journal_id, status="retrying"))
    exception_item(engine, journal_id, delivery(engine, journal_id), status="resolved")
    exception_item(engine, journal_id)  # the routed message's own: nothing to retry
    failed_id, failed = entry(engine, status="failed")
    own = exception_item(engine, failed_id)
    other_id, _ = entry(engine)
    exception_item(engine, other_id, delivery(engine, other_id, status="dead"))
    assert queue.retryable_for([failed, message_id, "nope", message_id]) == [dead, own]
    assert queue.retryable_for([]) == []
