"""A message that fails deterministically fails alone (issue 13): it is isolated as
failed with an owned exception item, and every other patient's messages are routed and
delivered, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.ingest import Ingestor
from engine.journal import Journal, Received, now_utc
from engine.outbox import Outbox
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.store.migrate import upgrade
from engine.store.models import ExceptionItem, JournalEntry
from tests.delivery_config import update

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
        statuses = dict(session.execute(select(JournalEntry.control_id, JournalEntry.status)))
        assert statuses == {"POISON-1": "failed", "GOOD-1": "routed"}
        item = session.scalars(select(ExceptionItem).where(
            ExceptionItem.journal_id == poison_id)).one()
        assert (item.status, item.error_class, item.owner_role) == (
            "open", "validation", "operator")
        assert item.recovery_procedure  # the catalog's, for the source connection
        assert "\ufffd" not in item.summary and "\udcff" not in item.summary
    # Nothing waits behind the failed message: the other patient's delivery is claimed.
    chains = Outbox(engine).claim(100)
    assert {claimed.destination for chain in chains for claimed in chain} >= {
        "analytics-warehouse"}
