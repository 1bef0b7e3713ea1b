"""A message that fails deterministically fails alone (issue 13): it is isolated as
failed with an owned exception item, and every other patient's messages are routed and
delivered, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.hl7v2 import parse
from engine.ingest import Ingestor, IngestResult
from engine.journal import Journal, Kind, Received, now_utc
from engine.outbox import Outbox
from engine.pipeline import Pipeline
from engine.rule_versions import RuleSetCache, bootstrap, load_published, source_charset
from engine.rules.exception_policy import ErrorClass
from engine.store.migrate import upgrade
from engine.store.models import Delivery, ExceptionItem, JournalEntry
from tests.delivery_config import delivery_config, update

ROOT = Path(__file__).resolve().parents[3]


def prepared(engine) -> Ingestor:
    upgrade(engine)
    bootstrap(engine, ROOT)
    return Ingestor(Journal(engine))


def journaled_as_before(engine, raw: bytes, control_id: str) -> int:
    """A row as the journal kept it before undecodable bytes were refused at ingest:
    received, its raw bytes as sent."""
    with Session(engine) as session, session.begin():
        entry = JournalEntry(
            message_id=str(uuid.uuid4()), received_at=now_utc(), source="ehr-adt-feed",
            format="hl7v2", peer=None, sending_application="EHR", sending_facility="RIVERSIDE",
            control_id=control_id, content_hash=None, message_type="ADT", event="A08",
            patient_key="poison-patient", status="received", status_reason=None,
            rule_set_version=None, size_bytes=len(raw), raw=raw, is_original=False)
        session.add(entry)
        session.flush()
        return entry.id


def test_a_byte_invalid_in_the_charset_fails_its_message_alone(engine):
    """Defect 1: an ADT whose PID-5 holds 0xFF (no MSH-18, so UTF-8) failed on every
    pipeline pass with UnicodeEncodeError; the pipeline retried it forever, and every
    delivery waited behind it."""
    ingestor = prepared(engine)
    poison = update("POISON-1", "MRN-P").replace(b"DOE^JANE", b"DO\xffE^JANE")
    poison_id = journaled_as_before(engine, poison, "POISON-1")
    ingestor.ingest(Received(update("GOOD-1", "MRN-G"), "ehr-adt-feed"))

    Pipeline(engine).run_once()

    with Session(engine) as session:
        statuses = dict(session.execute(
            select(JournalEntry.control_id, JournalEntry.status)).all())
        assert statuses == {"POISON-1": "failed", "GOOD-1": "routed"}
        item = session.scalars(select(ExceptionItem).where(
            ExceptionItem.journal_id == poison_id)).one()
        rule_set = load_published(engine).rule_set
        owner = rule_set.policies.resolve("ehr-adt-feed", ErrorClass.VALIDATION)
        assert (item.status, item.error_class, item.owner_role) == (
            "open", "validation", str(owner.dead_letter.owner_role))
        assert item.recovery_procedure == rule_set.connections["ehr-adt-feed"].recovery_procedure
        assert "\ufffd" not in item.summary and "\udcff" not in item.summary
    # Nothing waits behind the failed message: the other patient's delivery is claimed.
    chains = Outbox(engine).claim(100)
    assert {claimed.destination for chain in chains for claimed in chain} >= {
        "analytics-warehouse"}


def test_a_message_whose_outcome_the_store_refuses_fails_alone(engine):
    """Defect 1, the general case: whatever the store refuses about one message's
    outcome (here its delivery's idempotency key is taken already) fails that message
    and not its batch, and the pipeline does not raise on every pass."""
    ingestor = prepared(engine)
    refused = ingestor.ingest(Received(update("REFUSED-1", "MRN-R"), "ehr-adt-feed"))
    ingestor.ingest(Received(update("GOOD-2", "MRN-G"), "ehr-adt-feed"))
    assert refused.journaled is not None
    with Session(engine) as session, session.begin():
        moment = now_utc()
        session.add(Delivery(
            journal_id=refused.journaled.journal_id, destination="analytics-warehouse",
            patient_key=None, sequence=0, status="delivered",
            idempotency_key=f"{refused.journaled.message_id}:analytics-warehouse",
            payload={}, attempts=1, created_at=moment, updated_at=moment))

    Pipeline(engine).run_once()
    Pipeline(engine).run_once()  # nothing left: the refused message is not taken again

    with Session(engine) as session:
        entries = {e.control_id: e for e in session.scalars(select(JournalEntry))}
        assert {k: e.status for k, e in entries.items()} == {
            "REFUSED-1": "failed", "GOOD-2": "routed"}
        assert "IntegrityError" in (entries["REFUSED-1"].status_reason or "")
        item = session.scalars(select(ExceptionItem).where(
            ExceptionItem.journal_id == entries["REFUSED-1"].id)).one()
        assert "the store refused this message's outcome" in item.summary


def test_a_byte_invalid_in_pid_3_is_rejected_alone_in_its_group_commit(engine):
    """Defect 2: 0xFF in PID-3 made patient_key raise inside the journal's group commit:
    nothing in the batch was journaled, and no sender in it got an ACK. Now that message
    is journaled as rejected and answered AR naming PID-3; the others are journaled."""
    ingestor = prepared(engine)
    poison = update("BAD-PID3", "MRNX7").replace(b"MRNX7", b"MRN\xff7")

    async def together() -> list[IngestResult]:
        # Queued at once, so the journal's writer commits them as one group.
        return list(await asyncio.gather(*(
            ingestor.ingest_async(Received(raw, "ehr-adt-feed"))
            for raw in (update("OK-1", "MRN-1"), poison, update("OK-2", "MRN-2")))))

    first, rejected, second = asyncio.run(together())
    assert first.journaled is not None and second.journaled is not None
    assert (first.journaled.kind, second.journaled.kind) == (Kind.NEW, Kind.NEW)
    assert rejected.journaled is not None and rejected.journaled.kind == Kind.REJECTED
    assert rejected.ack is not None
    ack = parse(rejected.ack)
    assert (ack.get("MSA-1"), ack.get("MSA-2")) == ("AR", "BAD-PID3")
    assert (ack.get("ERR-2.1"), ack.get("ERR-2.2"), ack.get("ERR-2.3")) == ("PID", "1", "3")
    with Session(engine) as session:
        entry = session.scalars(select(JournalEntry).where(
            JournalEntry.status == "rejected")).one()
        assert entry.raw == poison  # the bytes as sent, for the operator
        assert entry.patient_key is None
        assert session.scalars(select(ExceptionItem).where(
            ExceptionItem.journal_id == entry.id)).one().error_class == "validation"


def test_a_feed_in_latin_1_without_msh_18_is_read_in_its_connections_charset(
        engine, tmp_path):
    """Raw bytes stay bytes: text is decoded under MSH-18, or the connection's configured
    charset; the same bytes from a feed that names none are refused, naming PID-5."""
    config = delivery_config(tmp_path / "config", "http://127.0.0.1:9/events")
    feed = config / "catalog" / "connections" / "ehr-adt-feed.yaml"
    feed.write_text(feed.read_text() + "charset: 8859/1\n")
    upgrade(engine)
    bootstrap(engine, config)
    rule_sets = RuleSetCache(engine)
    ingestor = Ingestor(Journal(engine, charsets=source_charset(rule_sets)))
    latin = update("LATIN-1", "MRN-L").replace(b"DOE^JANE", b"M\xdcLLER^J\xd6RG")

    assert parse(ingestor.ingest(Received(latin, "ehr-adt-feed")).ack).get("MSA-1") == "AA"
    refused = ingestor.ingest(Received(latin, "other-feed"))
    assert (parse(refused.ack).get("MSA-1"), parse(refused.ack).get_raw("ERR-2")) == (
        "AR", "PID^1^5")
    Pipeline(engine, rule_sets).run_once()
    with Session(engine) as session:
        delivery = session.scalars(select(Delivery)).one()
    assert delivery.payload["patient"]["names"][0]["family"] == "MÜLLER"
