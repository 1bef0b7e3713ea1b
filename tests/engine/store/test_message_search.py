"""The message log's search on SQLite and PostgreSQL: messages journaled and routed
through the real journal and pipeline are found by control id, patient, type, event,
source, status, destination, time range and the values at the indexed HL7 paths, each
search finding exactly the right messages, through lookup keys that hold no value."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.cli import main
from engine.exception_queue import ExceptionQueue
from engine.hl7v2 import parse
from engine.indexed_paths import IndexedPaths
from engine.journal import Journal, Received, entry_fields
from engine.lookup_keys import CONTROL_ID, PATIENT, lookup_key
from engine.message_log import MessageLog
from engine.pipeline import Pipeline
from engine.queues import Invalid
from engine.store.migrate import upgrade
from engine.store.models import Delivery, JournalEntry, MessageLookup
from tests.engine.store.query_plan import plan, statements_sent
from tests.engine.test_exception_queue import ADMISSION, failed_message
from tests.queue_rows import prepared, sample
from tests.store_template import migrated

FHIR_AUTHORITY = "urn:oid:2.16.840.1.113883.19.5"
PORTAL_BUNDLE = {
    "resourceType": "Bundle", "type": "collection",
    "identifier": {"system": "urn:portal:submissions", "value": "S-1001"},
    "entry": [{"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": {
        "resourceType": "Patient",
        "identifier": [{"system": FHIR_AUTHORITY, "value": "MRN-7731"}],
        "name": [{"family": "Quintero", "given": ["Rosa"]}], "gender": "female",
        "birthDate": "1961-04-02"}}],
}


def adt(control_id: str, mrn: str, location: str, event: str = "A04") -> bytes:
    return (f"MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500||ADT^{event}^ADT_A01|"
            f"{control_id}|P|2.5.1\rEVN|{event}|20261124101500\r"
            f"PID|1||{mrn}^^^RIVERSIDE^MR||DOE^JANE||19800101|F\r"
            f"PV1|1|O|{location}^101^A\r").encode()


def oru(control_id: str, mrn: str, codes: list[str]) -> bytes:
    results = "".join(f"OBX|{n}|NM|{code}^Result {n}^LN||{n}|mg/dL|||||F\r"
                      for n, code in enumerate(codes, 1))
    return (f"MSH|^~\\&|LIS|LABFAC|SB|RIVERSIDE|20261124101500||ORU^R01^ORU_R01|"
            f"{control_id}|P|2.5.1\rPID|1||{mrn}^^^RIVERSIDE^MR||DOE^JANE||19800101|F\r"
            f"OBR|1||ORD-{control_id}|CBC^Blood count^L\r{results}").encode()


MESSAGES = {
    "A1": adt("A1", "MRN1", "WARD1"),
    "A2": adt("A2", "MRN2", "WARD2"),
    "A3": adt("A3", "MRN1", "WARD2", event="A08"),
    "R1": oru("R1", "MRN1", ["2345-7", "2345-7", "718-7"]),  # one code twice
    "R2": oru("R2", "MRN2", ["718-7"]),
}


@pytest.fixture
def journaled(engine) -> dict[str, str]:
    """The messages journaled in order and routed: their message ids by name, with a
    duplicate of A1 (A1-again) and a FHIR Bundle (F1)."""
    prepared(engine)
    journal = Journal(engine)
    try:
        ids = {name: journal.record(Received(raw, "ehr-adt-feed")).message_id
               for name, raw in MESSAGES.items()}
        again = journal.record(Received(MESSAGES["A1"], "ehr-adt-feed"))
        assert again.kind == "duplicate"
        ids["A1-again"] = again.message_id
        ids["F1"] = journal.record(Received(json.dumps(PORTAL_BUNDLE).encode(), "portal-fhir",
                                            format="fhir-r4")).message_id
    finally:
        journal.close()
    assert Pipeline(engine).run_once() == 6
    return ids


def found(engine, query: dict[str, str], **paging: int) -> list[str]:
    return [item["message_id"]
            for item in MessageLog(engine).list(query, **paging).items]


def names(ids: dict[str, str], found_ids: list[str]) -> set[str]:
    by_id = {message_id: name for name, message_id in ids.items()}
    return {by_id[message_id] for message_id in found_ids}


@pytest.mark.parametrize(("query", "expected"), [
    ({"control_id": "A1"}, {"A1", "A1-again"}),
    ({"control_id": "R2"}, {"R2"}),
    ({"control_id": "NONE"}, set()),
    ({"patient": "MRN1", "patient_authority": "RIVERSIDE"}, {"A1", "A1-again", "A3", "R1"}),
    ({"patient": "MRN1"}, set()),  # the authority is part of the identifier
    ({"path": "OBX-3.1", "value": "2345-7"}, {"R1"}),
    ({"path": "OBX-3.1", "value": "718-7"}, {"R1", "R2"}),
    ({"path": "OBX[*]-3.1", "value": "718-7"}, {"R1", "R2"}),
    ({"path": "PV1-3.1", "value": "WARD2"}, {"A2", "A3"}),
    ({"path": "MSH-4", "value": "LABFAC"}, {"R1", "R2"}),
    ({"path": "MSH-4", "value": "labfac"}, set()),  # values match exactly
    ({"patient": "MRN1", "patient_authority": "RIVERSIDE", "path": "PV1-3.1",
      "value": "WARD2"}, {"A3"}),
    ({"control_id": "A1", "status": "duplicate"}, {"A1-again"}),
    ({"type": "ADT", "event": "A08"}, {"A3"}),
    ({"type": "ORU", "source": "ehr-adt-feed"}, {"R1", "R2"}),
    ({"source": "portal-fhir"}, {"F1"}),
    # A04 and A08 with a patient identifier go to the lab's patient index.
    ({"destination": "lab-system"}, {"A1", "A2", "A3"}),
    ({"destination": "lab-system", "path": "PV1-3.1", "value": "WARD1"}, {"A1"}),
    # A FHIR message is found by its Bundle identifier and its patient.
    ({"control_id": "urn:portal:submissions|S-1001"}, {"F1"}),
    ({"patient": "MRN-7731", "patient_authority": FHIR_AUTHORITY}, {"F1"}),
])
def test_each_search_finds_exactly_its_messages(engine, journaled, query, expected):
    assert names(journaled, found(engine, query)) == expected


def test_a_value_held_twice_is_one_key_and_a_fhir_message_has_no_path_keys(engine, journaled):
    with Session(engine) as session:
        def kinds(name: str) -> list[str]:
            return sorted(session.scalars(select(MessageLookup.kind).join(
                JournalEntry, JournalEntry.id == MessageLookup.journal_id).where(
                JournalEntry.message_id == journaled[name])))

        assert kinds("R1") == ["control_id", "path:MSH-4", "path:OBX-3.1", "path:OBX-3.1",
                               "patient"]  # 2345-7 and 718-7, once each
        assert kinds("F1") == ["control_id", "patient"]
        # The duplicate never reaches the pipeline: found by its identity alone.
        assert kinds("A1-again") == ["control_id", "patient"]
        keys = set(session.scalars(select(MessageLookup.key)))
    assert lookup_key(CONTROL_ID, "R1") in keys
    assert not {"R1", "MRN1", "2345-7", "WARD2"} & keys  # keys, never the values


def test_time_range_sort_and_paging(engine, journaled):
    log = MessageLog(engine)
    everything = log.list({"sort": "received_at"}, per_page=50).items
    assert [m["control_id"] for m in everything][:5] == ["A1", "A2", "A3", "R1", "R2"]
    newest_first = found(engine, {"path": "OBX-3.1", "value": "718-7"})
    assert names(journaled, newest_first[:1]) == {"R2"}
    oldest_first = found(engine, {"path": "OBX-3.1", "value": "718-7", "sort": "received_at"})
    assert oldest_first == newest_first[::-1]
    a3 = next(m for m in everything if m["control_id"] == "A3")
    r1 = next(m for m in everything if m["control_id"] == "R1")
    window = {"since": a3["received_at"], "until": r1["received_at"]}
    assert names(journaled, found(engine, window)) == {"A3"}
    assert names(journaled, found(engine, {**window, "patient": "MRN1",
                                           "patient_authority": "RIVERSIDE"})) == {"A3"}
    first = log.list({"patient": "MRN1", "patient_authority": "RIVERSIDE"}, 1, 3)
    second = log.list({"patient": "MRN1", "patient_authority": "RIVERSIDE"}, 2, 3)
    assert (first.total, first.total_exact, len(first.items), len(second.items)) == (
        4, True, 3, 1)
    assert second.total == 4
    assert not {m["message_id"] for m in first.items} & {m["message_id"] for m in second.items}


def test_a_search_by_delivery_status_finds_what_the_dashboard_counted(engine, journaled):
    """The dashboard's tiles link here by destination and delivery status: failed
    counts dead letters and deliveries that could not be encoded."""
    def deliver(name: str, status: str) -> None:
        with engine.begin() as connection:
            journal_id = select(JournalEntry.id).where(
                JournalEntry.message_id == journaled[name]).scalar_subquery()
            connection.execute(update(Delivery).where(
                Delivery.journal_id == journal_id, Delivery.destination == "lab-system")
                .values(status=status))

    deliver("A1", "dead")
    deliver("A2", "failed")
    deliver("A3", "delivered")
    lab = {"destination": "lab-system"}
    assert names(journaled, found(engine, {**lab, "delivery_status": "failed"})) == {"A1", "A2"}
    assert names(journaled, found(engine, {**lab, "delivery_status": "dead"})) == {"A1"}
    assert names(journaled, found(engine, {**lab, "delivery_status": "delivered"})) == {"A3"}
    assert names(journaled, found(engine, {**lab, "delivery_status": "held"})) == set()
    # Without a destination: a delivery anywhere in that status.
    assert names(journaled, found(engine, {"delivery_status": "failed"})) == {"A1", "A2"}
    assert names(journaled, found(engine, {"delivery_status": "failed",
                                           "path": "PV1-3.1", "value": "WARD2"})) == {"A2"}
    with pytest.raises(Invalid, match=r"unknown delivery_status 'lost'\. Search one of: "
                                      r"held, pending"):
        MessageLog(engine).list({"delivery_status": "lost"})


def test_the_total_stops_counting_past_the_page(engine, journaled, monkeypatch):
    monkeypatch.setattr("engine.message_log.TOTAL_COUNTED", 1)
    page = MessageLog(engine).list({"patient": "MRN1", "patient_authority": "RIVERSIDE"},
                                   1, 1)
    assert (len(page.items), page.total, page.total_exact) == (1, 2, False)
    assert page.as_dict()["total_exact"] is False


@pytest.mark.parametrize(("query", "error"), [
    ({"colour": "red"}, r"unknown filter 'colour'\. Filter by: control_id, patient"),
    ({"path": "OBX-5", "value": "x"},
     r"'OBX-5' is not an indexed path\. Search one of the indexed paths: OBX-3.1, "
     r"PV1-3.1, MSH-4"),
    ({"path": "OBX-3.1"}, r"path and value go together"),
    ({"value": "x"}, r"path and value go together"),
    ({"patient_authority": "RIVERSIDE"}, r"patient_authority needs patient"),
    ({"sort": "status"}, r"unknown sort 'status'\. Sort by: -received_at, received_at"),
    ({"since": "2026-01-01"}, r"since must be an ISO 8601 time with an offset"),
    ({"control_id": 7}, r"control_id must be text"),
])
def test_a_wrong_search_says_what_to_send(engine, query, error):
    migrated(engine)
    with pytest.raises(Invalid, match=error):
        MessageLog(engine).list(query)


def test_only_the_configured_paths_are_keyed_and_searched(engine):
    prepared(engine)
    journal = Journal(engine)
    try:
        ward = journal.record(Received(MESSAGES["A2"], "ehr-adt-feed")).message_id
    finally:
        journal.close()
    Pipeline(engine, indexed=IndexedPaths(["PV1-3"])).run_once()
    log = MessageLog(engine, IndexedPaths(["PV1-3"]))
    assert found_with(log, {"path": "PV1-3", "value": "WARD2"}) == [ward]
    with pytest.raises(Invalid, match=r"indexed paths: PV1-3$"):
        log.list({"path": "OBX-3.1", "value": "718-7"})


def found_with(log: MessageLog, query: dict[str, str]) -> list[str]:
    return [item["message_id"] for item in log.list(query).items]


def test_a_message_routed_again_keeps_one_key_per_value(engine, journaled):
    with engine.begin() as connection:
        connection.execute(update(JournalEntry).where(
            JournalEntry.message_id == journaled["R1"]).values(status="received"))
    assert Pipeline(engine).run_once() == 1
    assert names(journaled, found(engine, {"path": "OBX-3.1", "value": "718-7"})) == {
        "R1", "R2"}
    with Session(engine) as session:
        assert len(session.scalars(select(MessageLookup).join(
            JournalEntry, JournalEntry.id == MessageLookup.journal_id).where(
            JournalEntry.message_id == journaled["R1"])).all()) == 5


def test_an_edited_copy_is_found_beside_its_original(engine, monkeypatch):
    prepared(engine)
    item_id, message_id = failed_message(engine, monkeypatch)
    edited = parse(sample(ADMISSION))
    edited.set("EVN-1", "A01")
    view = ExceptionQueue(engine).reprocess(item_id, edited.encode().decode(), "anna")
    copy_id = view["replacement"]["message_id"]
    control_id, mrn, authority = (edited.get_raw("MSH-10"), edited.get("PID-3.1"),
                                  edited.get("PID-3.4") or "")
    assert set(found(engine, {"control_id": control_id})) == {message_id, copy_id}
    assert set(found(engine, {"patient": mrn, "patient_authority": authority})) == {
        message_id, copy_id}


def test_messages_journaled_before_the_search_existed_get_their_keys(engine):
    upgrade(engine, "0012")
    rows = []
    for name, status in (("A2", "routed"), ("R2", "received")):
        row, error = entry_fields(Received(MESSAGES[name], "ehr-adt-feed"))
        assert error is None
        rows.append({**row, "status": status})
    with engine.begin() as connection:
        connection.execute(insert(JournalEntry), rows)
    upgrade(engine)
    assert [m["control_id"] for m in MessageLog(engine).list({"control_id": "R2"}).items] == [
        "R2"]
    assert [m["control_id"] for m in MessageLog(engine).list(
        {"patient": "MRN2", "patient_authority": "RIVERSIDE"}, per_page=5).items] == [
        "R2", "A2"]
    assert [m["control_id"] for m in MessageLog(engine).list(
        {"path": "PV1-3.1", "value": "WARD2"}).items] == ["A2"]
    # Not routed yet: its path keys come when the pipeline parses it.
    assert MessageLog(engine).list({"path": "OBX-3.1", "value": "718-7"}).items == []
    with Session(engine) as session:
        assert session.scalar(select(MessageLookup.key).where(
            MessageLookup.kind == PATIENT).limit(1)) == lookup_key(PATIENT, "RIVERSIDE|MRN2")


@pytest.mark.parametrize("query", [
    {"control_id": "A1"}, {"patient": "MRN1", "patient_authority": "RIVERSIDE"},
    {"path": "OBX-3.1", "value": "718-7", "status": "routed"},
    {"path": "MSH-4", "value": "LABFAC", "sort": "received_at"},
])
def test_a_search_walks_the_lookup_index_in_its_order(engine, journaled, query):
    """No sort of every match: a page of a busy code's messages costs a page."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    with statements_sent(engine) as sent:
        MessageLog(engine).list(query, per_page=1)
    chosen = [plan(engine, sql, parameters) for sql, parameters in sent
              if "FROM message_lookups" in sql]
    assert chosen, sent
    for walk in chosen:
        assert "ix_message_lookups_search" in walk, walk
        assert "TEMP B-TREE" not in walk and "Sort" not in walk, walk
        assert not re.search(r"SCAN (journal|message_lookups)|Seq Scan", walk), walk


def test_the_command_line_searches_with_the_same_parameters(engine, journaled, capsys):
    url = engine.url.render_as_string(hide_password=False)
    assert main(["messages", "list", "--as", "olive", "--database", url, "--path",
                 "OBX-3.1", "--value", "718-7", "--sort", "received_at", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["control_id"] for m in listed] == ["R1", "R2"]
    assert main(["messages", "list", "--as", "olive", "--database", url, "--destination",
                 "lab-system", "--delivery-status", "pending", "--sort", "received_at",
                 "--json"]) == 0
    waiting = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["control_id"] for m in waiting] == ["A1", "A2", "A3"]
    assert main(["messages", "list", "--as", "olive", "--database", url, "--path",
                 "OBX-5", "--value", "1"]) == 2
    assert "'OBX-5' is not an indexed path" in capsys.readouterr().err
