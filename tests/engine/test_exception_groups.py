"""The exception queue on SQLite and PostgreSQL: items grouped by signature with
counts, listed by signature, sorted and filtered the same way on both stores, and the
content a reprocess replaces, shown only through an audited content view."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.exception_queue import ExceptionQueue
from engine.exception_signature import signature_of
from engine.journal import now_utc
from engine.queues import Invalid, Refused
from engine.store.models import AuditEvent, ExceptionItem, JournalEntry
from tests.queue_rows import delivery, entry, exception_item, ingest, prepared, sample

REFUSED = "delivery to clinic-north failed after {} attempts: connection refused"
START = now_utc() - timedelta(hours=1)


@pytest.fixture
def queue(engine) -> ExceptionQueue:
    prepared(engine)
    return ExceptionQueue(engine)


def raised(engine, summary: str, connection: str | None = "clinic-north",
           error_class: str = "transport_error", status: str = "open", minute: int = 0,
           assignee: str | None = None, escalate_in: int | None = None) -> int:
    """An item as the outbox or the pipeline raises it, ``minute`` after START."""
    at = START + timedelta(minutes=minute)
    with engine.begin() as connection_:
        result = connection_.execute(insert(ExceptionItem).values(
            journal_id=None, delivery_id=None, connection_id=connection,
            error_class=error_class, owner_role="operator", status=status,
            assignee=assignee, summary=summary, detail=None, recovery_procedure="Call them",
            created_at=at, escalate_to="admin" if escalate_in is not None else None,
            escalate_at=None if escalate_in is None else at + timedelta(minutes=escalate_in)))
    return result.inserted_primary_key[0]


def key(summary: str, connection: str | None = "clinic-north",
        error_class: str = "transport_error") -> str:
    return signature_of(connection, error_class, summary).key


def test_items_are_grouped_by_signature_with_counts_and_times(engine, queue):
    raised(engine, REFUSED.format(5), minute=1)
    raised(engine, REFUSED.format(3), minute=2)
    raised(engine, REFUSED.format(4), minute=3, status="assigned", assignee="olive")
    raised(engine, REFUSED.format(5), minute=4, status="resolved")
    raised(engine, "delivery to clinic-north failed after 5 attempts: HTTP 503", minute=5)
    raised(engine, REFUSED.format(2).replace("clinic-north", "lab-system"), "lab-system",
           minute=6)
    page = queue.signatures({"status": "waiting"})
    assert page.total == 3
    assert [(g["connection"], g["pattern"], g["count"]) for g in page.items] == [
        ("clinic-north", REFUSED.format("#"), 3),
        ("clinic-north", "delivery to clinic-north failed after # attempts: HTTP 503", 1),
        ("lab-system", REFUSED.format("#").replace("clinic-north", "lab-system"), 1)]
    first = page.items[0]
    assert first["signature"] == key(REFUSED.format(7))
    assert first["first_at"] == (START + timedelta(minutes=1)).isoformat()
    assert first["last_at"] == (START + timedelta(minutes=3)).isoformat()
    assert first["example"] == REFUSED.format(4)  # its latest item's, as people read it
    assert queue.signatures({}).items[0]["count"] == 4  # every status
    assert queue.signatures({"connection": "lab-system"}).total == 1


def test_groups_sort_and_page_the_same_on_both_stores(engine, queue):
    for minute, summary in enumerate(["b 1", "a 1", "a 2", "c 1", "c 2", "c 3"]):
        raised(engine, summary, minute=minute)
    patterns = [g["pattern"] for g in queue.signatures({}, sort="-count").items]
    assert patterns == ["c #", "a #", "b #"]
    assert [g["pattern"] for g in queue.signatures({}, sort="count").items] == [
        "b #", "a #", "c #"]
    assert [g["pattern"] for g in queue.signatures({}, sort="first_at").items] == [
        "b #", "a #", "c #"]
    assert [g["pattern"] for g in queue.signatures({}, sort="-last_at").items] == [
        "c #", "a #", "b #"]
    page = queue.signatures({}, page=2, per_page=2, sort="-count")
    assert (page.total, [g["pattern"] for g in page.items]) == (3, ["b #"])
    with pytest.raises(Invalid, match="unknown sort 'size'"):
        queue.signatures({}, sort="size")


def test_listing_by_signature_takes_exactly_its_members(engine, queue):
    members = [raised(engine, REFUSED.format(n), minute=n) for n in (5, 3, 9)]
    raised(engine, REFUSED.format(5).upper())  # LIKE on SQLite would take it: not a member
    raised(engine, REFUSED.format(5), connection=None)
    raised(engine, "delivery to clinic-north failed after 5_ attempts: connection refused")
    raised(engine, REFUSED.format(5), error_class="rejected")
    listed = queue.list({"signature": key(REFUSED.format(1))}, sort="created_at")
    assert [item["id"] for item in listed.items] == [members[1], members[0], members[2]]
    assert all(item["signature"] == key(REFUSED.format(1)) for item in listed.items)
    page = queue.list({"signature": key(REFUSED.format(1))}, page=2, per_page=2, sort="id")
    assert (page.total, [item["id"] for item in page.items]) == (3, members[2:])
    odd = "delivery to clinic-north failed after 5_ attempts: connection refused"
    assert queue.list({"signature": key(odd)}).total == 1
    assert queue.list({"signature": key(REFUSED.format(1), None)}).total == 1
    assert queue.list({"signature": key("no such summary")}).total == 0
    assert queue.list({"signature": key(REFUSED.format(1)), "status": "resolved"}).total == 0
    with pytest.raises(Invalid, match="not a signature"):
        queue.list({"signature": "clinic-north"})


def test_list_sorts_with_empty_values_last_either_way(engine, queue):
    later = raised(engine, "a", minute=1, escalate_in=30)
    never = raised(engine, "b", minute=2)
    sooner = raised(engine, "c", minute=3, escalate_in=5)
    assert [i["id"] for i in queue.list({}, sort="escalate_at").items] == [
        sooner, later, never]
    assert [i["id"] for i in queue.list({}, sort="-escalate_at").items] == [
        later, sooner, never]
    assert [i["id"] for i in queue.list({}, sort="created_at").items] == [later, never, sooner]
    assert [i["id"] for i in queue.list({}).items] == [sooner, never, later]  # newest first
    with pytest.raises(Invalid, match="unknown sort 'summary'"):
        queue.list({}, sort="summary")


def test_waiting_means_open_or_assigned(engine, queue):
    first = raised(engine, "a")
    second = raised(engine, "b", status="assigned", assignee="olive")
    raised(engine, "c", status="retried")
    assert {i["id"] for i in queue.list({"status": "waiting"}).items} == {first, second}
    assert queue.list({"status": "open"}).total == 1


def test_facets_name_what_the_waiting_items_hold(engine, queue):
    raised(engine, "a", connection="lab-system", error_class="rejected")
    raised(engine, "b", status="assigned", assignee="olive")
    raised(engine, "c", connection=None)
    raised(engine, "d", connection="old-feed", status="resolved", assignee="anna")
    assert queue.facets() == {"connection": ["clinic-north", "lab-system"],
                              "error_class": ["rejected", "transport_error"],
                              "assignee": ["olive"]}


def test_waiting_ids_take_a_whole_group_oldest_first(engine, queue):
    members = [raised(engine, REFUSED.format(n), minute=n) for n in (1, 2, 3)]
    raised(engine, REFUSED.format(4), status="retried")
    raised(engine, "other 1")
    group = {"signature": key(REFUSED.format(1))}
    assert queue.waiting_ids(group, limit=10) == members
    assert queue.waiting_ids(group, limit=2) == members[:2]
    assert queue.waiting_ids({"connection": "clinic-north", "status": "resolved"},
                             limit=10) == [*members, members[-1] + 2]


def content_views(engine) -> list[tuple[str, str, str, dict]]:
    with Session(engine) as session:
        return [(e.actor, e.target_type, e.target_id, e.detail) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "content.view")
            .order_by(AuditEvent.id))]


def test_the_original_of_a_dead_delivery_is_its_body_and_the_view_is_audited(engine,
                                                                              queue):
    journal_id, _ = entry(engine)
    delivery_id = delivery(engine, journal_id, body='{"name":"SECRET-NAME"}')
    item_id = exception_item(engine, journal_id, delivery_id)
    original = queue.original(item_id, "anna")
    assert (original.kind, original.what, original.text) == (
        "json", "delivery", '{"name":"SECRET-NAME"}')
    assert original.editable == '{\n  "name": "SECRET-NAME"\n}'
    assert content_views(engine) == [("anna", "delivery", str(delivery_id),
                                      {"exception_id": item_id,
                                       "purpose": "edit to reprocess"})]


def test_the_original_of_a_failed_message_is_the_message_as_received(engine, queue):
    raw = sample("fhir-converter/ADT-A01-01.hl7")
    message_id = ingest(engine, raw)
    with Session(engine) as session:
        journal_id = session.scalars(select(JournalEntry.id).where(
            JournalEntry.message_id == message_id)).one()
    item_id = exception_item(engine, journal_id)
    original = queue.original(item_id, "olive")
    assert (original.kind, original.what, original.target) == ("hl7v2", "message",
                                                               message_id)
    assert original.text.encode() == raw
    assert original.editable.split("\n")[0].startswith("MSH|")
    assert "\r" not in original.editable
    assert content_views(engine)[0][1:3] == ("message", message_id)


def test_no_original_is_shown_for_a_settled_item_or_one_naming_nothing(engine, queue):
    journal_id, _ = entry(engine)
    settled = exception_item(engine, journal_id, delivery(engine, journal_id),
                             status="resolved")
    with pytest.raises(Refused, match="no longer open"):
        queue.original(settled, "olive")
    with pytest.raises(Refused, match="names no message or delivery"):
        queue.original(raised(engine, "a"), "olive")
    assert content_views(engine) == []
