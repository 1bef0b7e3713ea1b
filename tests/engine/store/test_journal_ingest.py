"""Journal and ingest on SQLite and PostgreSQL: new, duplicate, conflict, rejected and
oversize messages, and the acknowledgement each one gets."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import FrameTooLargeError
from engine.hl7v2 import parse
from engine.ingest import Ingestor
from engine.journal import Journal, JournalStatements, Kind, Received, content_hash
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from engine.store.models import ExceptionItem, JournalEntry, StageEvent
from tests.engine.store.query_plan import sqlite_plan

ADT = (
    "MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500-0500||ADT^A01^ADT_A01|CTL1|P|2.5.1\r"
    "PID|1||MRN1^^^RIVERSIDE^MR||DOE^JANE\r"
)


def ingestor(engine) -> Ingestor:
    upgrade(engine)
    return Ingestor(Journal(engine))


def count(engine, model, **where) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(model).filter_by(**where)
        return int(session.scalar(query) or 0)


def test_new_message_is_journaled_before_its_aa(engine):
    result = ingestor(engine).ingest(Received(ADT.encode(), "ehr-adt-feed", "127.0.0.1"))
    assert result.journaled.kind == Kind.NEW
    assert parse(result.ack).get("MSA-1") == "AA"
    assert parse(result.ack).get("MSA-2") == "CTL1"
    with Session(engine) as session:
        entry = session.scalars(select(JournalEntry)).one()
        assert entry.raw == ADT.encode() and entry.status == "received" and entry.is_original
        assert entry.patient_key and "MRN1" not in entry.patient_key
        assert session.scalars(select(StageEvent.stage)).all() == ["journaled"]


def test_resend_with_new_msh7_is_a_duplicate_acked_again(engine):
    sb = ingestor(engine)
    first = sb.ingest(Received(ADT.encode(), "ehr-adt-feed"))
    again = sb.ingest(Received(ADT.replace("20261124101500", "20261124101700").encode(),
                               "ehr-adt-feed"))
    assert again.journaled.kind == Kind.DUPLICATE
    assert again.journaled.original_message_id == first.journaled.message_id
    assert parse(again.ack).get("MSA-1") == "AA"
    assert count(engine, JournalEntry, status="duplicate") == 1
    assert count(engine, ExceptionItem) == 0


def test_same_keys_other_content_is_a_conflict_in_the_exception_queue(engine):
    sb = ingestor(engine)
    sb.ingest(Received(ADT.encode(), "ehr-adt-feed"))
    result = sb.ingest(Received(ADT.replace("DOE^JANE", "DOE^JOAN").encode(), "ehr-adt-feed"))
    assert result.journaled.kind == Kind.CONFLICT
    ack = parse(result.ack)
    assert ack.get("MSA-1") == "AA" and ack.get("ERR-4") == "W" and ack.get("ERR-3") == "205"
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem)).one()
        assert (item.error_class, item.owner_role, item.status) == ("conflict", "operator", "open")
        assert "JOAN" not in repr(item.detail) and "JOAN" not in item.summary


def test_other_source_same_control_id_is_new(engine):
    sb = ingestor(engine)
    sb.ingest(Received(ADT.encode(), "ehr-adt-feed"))
    assert sb.ingest(Received(ADT.encode(), "lab-feed")).journaled.kind == Kind.NEW


def test_unreadable_input_is_journaled_rejected_and_answered_ar(engine):
    result = ingestor(engine).ingest(Received(b"PID|1||123\r", "ehr-adt-feed"))
    assert result.journaled.kind == Kind.REJECTED
    ack = parse(result.ack)
    assert ack.get("MSA-1") == "AR"
    assert "must start with an MSH segment" in ack.get("ERR-8")
    assert count(engine, JournalEntry, status="rejected") == 1
    assert count(engine, ExceptionItem, error_class="validation") == 1


def test_enhanced_mode_ne_gets_no_accept_ack(engine):
    sb = ingestor(engine)
    enhanced = ADT.replace("|P|2.5.1", "|P|2.5.1|||NE|AL")
    result = sb.ingest(Received(enhanced.encode(), "ehr-adt-feed"))
    assert result.journaled.kind == Kind.NEW and result.ack is None
    al = ADT.replace("CTL1", "CTL2").replace("|P|2.5.1", "|P|2.5.1|||AL|AL")
    assert parse(sb.ingest(Received(al.encode(), "ehr-adt-feed")).ack).get("MSA-1") == "CA"


def test_oversize_frame_is_recorded_without_content(engine):
    error = FrameTooLargeError(2_000_000, 1_000_000, head=ADT.encode()[:200])
    result = ingestor(engine).oversize("ehr-adt-feed", "10.0.0.5", error)
    assert result.close
    assert parse(result.ack).get("MSA-1") == "AR"
    with Session(engine) as session:
        entry = session.scalars(select(JournalEntry)).one()
        assert (entry.status, entry.raw, entry.size_bytes) == ("oversize", None, 2_000_000)
        item = session.scalars(select(ExceptionItem)).one()
        assert item.detail == {"size_bytes": 2_000_000, "peer": "10.0.0.5"}


def test_copies_arriving_at_once_are_processed_once(engine):
    sb = ingestor(engine)
    kinds = []
    barrier = threading.Barrier(6)

    def send() -> None:
        barrier.wait()
        kinds.append(sb.ingest(Received(ADT.encode(), "ehr-adt-feed")).journaled.kind)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(kinds) == sorted([Kind.NEW] + [Kind.DUPLICATE] * 5)
    assert count(engine, JournalEntry, is_original=True) == 1


def test_content_hash_ignores_msh7_and_line_endings():
    other_time = ADT.replace("20261124101500-0500", "20261125000000")
    assert content_hash(parse(ADT)) == content_hash(parse(other_time))
    assert content_hash(parse(ADT)) == content_hash(parse(ADT.replace("\r", "\r\n")))
    assert content_hash(parse(ADT)) != content_hash(parse(ADT.replace("JANE", "JOAN")))


def test_the_duplicate_lookup_uses_the_dedupe_index(tmp_path):
    """Regression: looking originals up by control id alone scanned the whole journal
    on every commit, so ingest slowed down as the journal grew. (SQLite's plan is
    checked: PostgreSQL picks plans by table statistics.)"""
    engine = open_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    upgrade(engine)
    keys = {("ehr-adt-feed", "EHR", "RIVERSIDE", "CTL1"), ("ehr-adt-feed", "EHR", "RIVERSIDE",
                                                           "CTL2")}
    ((query, parameters),) = JournalStatements(engine.dialect).originals_queries(keys)
    plan = sqlite_plan(engine, query.sql, query.parameters(parameters))
    engine.dispose()
    assert "USING INDEX" in plan and "SCAN journal" not in plan, plan


def test_a_header_value_longer_than_its_column_is_rejected_alike_on_both_stores(engine):
    """Defect 4: MSH-9.2 of 24 characters (its column holds 16) failed the group commit
    with DataError on PostgreSQL, so the sender got AE ("send it again") forever, while
    SQLite stored it. Both now answer AR naming MSH-9.2, and journal it as rejected."""
    long_event = ADT.replace("ADT^A01^ADT_A01", "ADT^" + "A" * 24 + "^ADT_A01")
    result = ingestor(engine).ingest(Received(long_event.encode(), "ehr-adt-feed"))
    ack = parse(result.ack)
    assert (ack.get("MSA-1"), ack.get("MSA-2")) == ("AR", "CTL1")
    assert (ack.get("ERR-2.1"), ack.get("ERR-2.3"), ack.get("ERR-2.5")) == ("MSH", "9", "2")
    assert "at most 16" in ack.get("ERR-8")
    assert result.journaled is not None and result.journaled.kind == Kind.REJECTED
    assert count(engine, JournalEntry, status="rejected") == 1
    assert count(engine, ExceptionItem, error_class="validation") == 1


@pytest.mark.parametrize("header", [
    "MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500||ADT^A01^ADT_A01||P|2.5.1",
    "MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500||ADT^A01^ADT_A01",
], ids=["empty", "missing"])
def test_a_message_without_msh_10_is_rejected(engine, header):
    """Defect 5: an empty or missing MSH-10 got AA with an empty MSA-2, and a resend was
    processed twice (no control id, nothing to recognise it by). MSH-10 is required."""
    sb = ingestor(engine)
    raw = (header + "\rPID|1||MRN1^^^RIVERSIDE^MR||DOE^JANE\r").encode()
    for _ in range(2):  # the resend is answered the same way
        result = sb.ingest(Received(raw, "ehr-adt-feed"))
        ack = parse(result.ack)
        assert ack.get("MSA-1") == "AR"
        assert (ack.get("ERR-2.1"), ack.get("ERR-2.3")) == ("MSH", "10")
        assert ack.get("ERR-3.1") == "101"  # required field missing
    assert count(engine, JournalEntry, status="rejected") == 2
    assert count(engine, JournalEntry, status="received") == 0


def test_a_journal_writer_that_dies_leaves_no_sender_waiting_and_is_replaced(engine):
    """Defect 8: if the journal's writer thread died, the senders in its batch and every
    later one waited forever (nothing restarted it). Fault: the writer is killed while
    it commits a batch."""
    journal = Journal(engine)
    upgrade(engine)
    commit = journal._write
    killed = threading.Event()

    def dying(batch):
        if not killed.is_set():
            killed.set()
            raise SystemExit("the journal writer is killed by the test")
        commit(batch)

    journal._write = dying
    try:
        first = journal.submit(Received(ADT.encode(), "ehr-adt-feed"))
        error = first.exception(timeout=30)  # answered: the sender gets AE, not silence
        assert type(error).__name__ == "WriterStopped"
        later = journal.submit(Received(ADT.encode(), "ehr-adt-feed")).result(timeout=30)
        assert later.kind == Kind.NEW
    finally:
        journal.close()


def test_a_sender_whose_message_the_writer_could_not_commit_gets_ae(engine):
    upgrade(engine)
    journal = Journal(engine)
    commit = journal._write

    def dying(batch):
        journal._write = commit
        raise SystemExit("the journal writer is killed by the test")

    journal._write = dying
    try:
        result = asyncio.run(asyncio.wait_for(
            Ingestor(journal).ingest_async(Received(ADT.encode(), "ehr-adt-feed")), 30))
        assert result.journaled is None
        assert parse(result.ack).get("MSA-1") == "AE"
    finally:
        journal.close()
