"""A journaled message's content read back for a person, on SQLite and PostgreSQL: the
bytes as text, the parsed message, the canonical record and the rows fired with what
their conditions saw, under the version the message was routed with (not the one
published since), and what each destination holds."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from engine.journal import Journal, Received, now_utc
from engine.message_content import MessageContent, document, parsed, raw_text
from engine.pipeline import Pipeline
from engine.rule_versions import CompiledVersions
from engine.store.models import JournalEntry, RuleSetVersion
from tests.delivery_config import delivery_config
from tests.engine.test_reroute import publish
from tests.queue_rows import HELD_ROW, HELD_SAMPLE, entry, ingest, prepared, sample

BUNDLE = {"resourceType": "Patient", "id": "p1",
          "identifier": [{"system": "urn:mrn", "value": "MRN-7731"}],
          "name": [{"family": "Quintero", "given": ["Rosa"]}]}


def test_a_message_is_explained_by_the_version_it_was_routed_with(engine, tmp_path):
    prepared(engine)
    message_id = ingest(engine, sample(HELD_SAMPLE))
    assert Pipeline(engine).run_once() == 1
    publish(engine, delivery_config(tmp_path / "v2", "http://127.0.0.1:9/events"), 2)
    content = MessageContent(engine)
    stored = content.stored(message_id)
    assert (stored.rule_set_version, stored.format) == (1, "hl7v2")
    explained = content.explained(stored)
    assert explained.version == 1 and explained.failure is None
    rows = {row.id: row for row in explained.rows}
    assert HELD_ROW in rows and "all-to-test-sink" not in rows
    [evidence] = rows[HELD_ROW].evidence
    assert (evidence.path, evidence.op, evidence.held) == (
        "results[*].abnormal_flags[*]", "in", True)
    assert "H" in evidence.seen
    record = explained.outcome.conversion.record if explained.outcome else {}
    assert record["message"]["control_id"] == "CNTRL-3456"
    assert [row.id for row in content.rows_fired(message_id).rows] == list(rows)

    text = raw_text(stored)
    assert text.startswith("MSH|") and "\nPID|" in text and "\r" not in text
    message = parsed(stored)
    assert message is not None and message.get("MSH-10") == "CNTRL-3456"
    sent = {d["destination"]: d for d in content.sent(message_id)}
    assert sent["ehr-fhir"]["status"] == "held"
    assert sent["ehr-fhir"]["payload"]["message"]["control_id"] == "CNTRL-3456"
    assert sent["ehr-fhir"]["body"]


def test_what_cannot_be_explained_says_why(engine):
    prepared(engine)
    _, waiting = entry(engine, status="received")
    content = MessageContent(engine)
    assert content.rows_fired(waiting).failure == "it has not been routed"
    _, garbage = entry(engine, status="failed", raw=b"not hl7 at all")
    with engine.begin() as connection:
        connection.execute(JournalEntry.__table__.update().where(
            JournalEntry.message_id == garbage).values(rule_set_version=1))
    explained = content.rows_fired(garbage)
    assert explained.failure == "it cannot be read (ParseError)" and explained.rows == ()
    assert raw_text(content.stored(garbage)) == "not hl7 at all"
    assert parsed(content.stored(garbage)) is None


def test_a_fhir_message_is_its_document(engine):
    prepared(engine)
    journal = Journal(engine)
    try:
        message_id = journal.record(Received(json.dumps(BUNDLE).encode(), "portal-fhir",
                                             format="fhir-r4")).message_id
    finally:
        journal.close()
    stored = MessageContent(engine).stored(message_id)
    assert document(stored)["name"][0]["family"] == "Quintero"
    assert parsed(stored) is None and json.loads(raw_text(stored)) == BUNDLE


def test_compiled_versions_keep_the_last_few(engine):
    prepared(engine)
    with engine.begin() as connection:
        first = connection.execute(RuleSetVersion.__table__.select()).first()
        for version in (2, 3):
            connection.execute(insert(RuleSetVersion).values(
                version=version, status="superseded", author="ana", content=first.content,
                content_hash=first.content_hash, created_at=now_utc()))
    versions = CompiledVersions(engine, keep=2)
    one = versions.get(1)
    assert versions.get(1) is one
    versions.get(2)
    versions.get(3)
    assert versions.get(1) is not one  # compiled again: it was the least recently used
    with pytest.raises(LookupError, match="no rule-set version 9"):
        versions.get(9)
