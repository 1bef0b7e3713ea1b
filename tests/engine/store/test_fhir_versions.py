"""Versions of a FHIR resource posted again with the same ``Type/id``, on SQLite and
PostgreSQL (issue 14, item 1): a changed resource is an update, journaled to be routed
after the version before it; the same body again is a duplicate; meta.versionId, else
meta.lastUpdated, else arrival says which version is newer; an older version arriving
after a newer one is journaled, owned in the exception queue and not routed. HL7 v2
duplicates and conflicts stay as they were."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from engine.fhir import read_fhir
from engine.ingest import Ingestor
from engine.journal import FHIR_R4, Journal, Journaled, Received
from engine.store.migrate import upgrade
from engine.store.models import ExceptionItem, JournalEntry, StageEvent
from tests.waiting import wait_until

SOURCE = "portal-fhir"
PATIENT_NAME = "Rosa Quintero"  # PHI: never in a reason, a summary or a detail
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def appointment(status: str = "booked", *, resource_id: str = "apt-1",
                version_id: str | None = None, last_updated: str | None = None,
                start: str = "2026-12-01T09:00:00+00:00") -> bytes:
    """An Appointment whose patient is named by a bare reference and a display: it
    carries no patient identifier, so no patient key."""
    document: dict[str, Any] = {
        "resourceType": "Appointment", "id": resource_id, "status": status, "start": start,
        "end": "2026-12-01T09:30:00+00:00",
        "participant": [{"status": "accepted", "actor": {
            "reference": "Patient/p-77", "display": PATIENT_NAME}}],
    }
    meta = {name: value for name, value in (("versionId", version_id),
                                            ("lastUpdated", last_updated)) if value}
    if meta:
        document["meta"] = meta
    return json.dumps(document).encode()


def journaled(engine: Engine) -> Ingestor:
    upgrade(engine)
    return Ingestor(Journal(engine))


def post(sb: Ingestor, body: bytes) -> Journaled:
    result = sb.ingest(Received(body, SOURCE, "127.0.0.1", format=FHIR_R4))
    assert result.journaled is not None
    return result.journaled


def entry(engine: Engine, message_id: str) -> JournalEntry:
    with Session(engine) as session:
        return session.scalars(select(JournalEntry).where(
            JournalEntry.message_id == message_id)).one()


def exceptions(engine: Engine) -> list[ExceptionItem]:
    with Session(engine) as session:
        return list(session.scalars(select(ExceptionItem).order_by(ExceptionItem.id)))


def test_a_changed_resource_is_an_update_journaled_to_be_routed_after_the_first(engine):
    """The Appointment booked, then cancelled: before, the cancellation was a conflict
    (same MSH-3/MSH-4/MSH-10, it said) and never routed."""
    sb = journaled(engine)
    booked = post(sb, appointment("booked"))
    cancelled = post(sb, appointment("cancelled"))
    assert (booked.kind, cancelled.kind) == ("received", "update")
    assert cancelled.previous_message_id == booked.message_id
    first, second = entry(engine, booked.message_id), entry(engine, cancelled.message_id)
    assert (first.status, second.status) == ("received", "received")  # both to be routed
    assert second.id > first.id  # its deliveries come after the first version's
    # No patient identifier: the versions still share the key that orders deliveries.
    assert first.patient_key is not None and first.patient_key == second.patient_key
    with Session(engine) as session:
        stages = session.scalars(select(StageEvent.journal_id).where(
            StageEvent.stage == "journaled")).all()
    assert sorted(stages) == [first.id, second.id]
    assert exceptions(engine) == []


def test_the_same_body_again_is_a_duplicate_of_the_newest_version(engine):
    sb = journaled(engine)
    post(sb, appointment("booked"))
    cancelled = post(sb, appointment("cancelled"))
    again = post(sb, appointment("cancelled"))
    assert again.kind == "duplicate" and again.original_message_id == cancelled.message_id
    assert entry(engine, again.message_id).status == "duplicate"
    # A new lastUpdated alone is no new content, as a new MSH-7 is none in HL7 v2.
    stamped = post(sb, appointment("cancelled", last_updated="2026-11-24T10:00:00Z"))
    assert stamped.kind == "duplicate" and stamped.original_message_id == cancelled.message_id
    assert exceptions(engine) == []


T1, T2 = "2026-11-24T09:00:00Z", "2026-11-24T09:30:00.250Z"
# (case, first version's meta, second version's meta, what the second is)
ORDERING = [
    ("versionId numbers, newer", {"version_id": "9"}, {"version_id": "10"}, "update"),
    ("versionId numbers, older", {"version_id": "10"}, {"version_id": "9"}, "stale"),
    ("versionId beats lastUpdated", {"version_id": "2", "last_updated": T2},
     {"version_id": "3", "last_updated": T1}, "update"),
    ("lastUpdated, newer", {"last_updated": T1}, {"last_updated": T2}, "update"),
    ("lastUpdated, older", {"last_updated": T2}, {"last_updated": T1}, "stale"),
    # 10:00+02:00 is 08:00Z: older than 09:00Z, though later as text.
    ("lastUpdated as instants", {"last_updated": T1},
     {"last_updated": "2026-11-24T10:00:00+02:00"}, "stale"),
    ("versionIds not numbers: lastUpdated", {"version_id": "b", "last_updated": T2},
     {"version_id": "c", "last_updated": T1}, "stale"),
    ("nothing to compare: arrival", {"version_id": "7"}, {}, "update"),
    ("same versionId, other content", {"version_id": "4"}, {"version_id": "4"}, "conflict"),
]


def test_meta_version_id_then_last_updated_then_arrival_decide_which_is_newer(engine):
    sb = journaled(engine)
    for number, (case, first_meta, second_meta, expected) in enumerate(ORDERING):
        resource_id = f"apt-order-{number}"
        first = post(sb, appointment("booked", resource_id=resource_id, **first_meta))
        second = post(sb, appointment("cancelled", resource_id=resource_id, **second_meta))
        assert (first.kind, second.kind) == ("received", expected), case
        routed = "received" if expected == "update" else expected
        assert entry(engine, second.message_id).status == routed, case


def test_an_older_version_after_a_newer_one_is_journaled_flagged_and_not_routed(engine):
    sb = journaled(engine)
    post(sb, appointment("booked", version_id="1"))
    newest = post(sb, appointment("cancelled", version_id="3"))
    stale = post(sb, appointment("booked", version_id="2", start="2026-12-02T09:00:00+00:00"))
    assert stale.kind == "stale" and stale.original_message_id == newest.message_id
    row = entry(engine, stale.message_id)
    assert row.status == "stale"  # journaled, and not waiting to be routed
    assert row.raw == appointment("booked", version_id="2", start="2026-12-02T09:00:00+00:00")
    (item,) = exceptions(engine)
    assert (item.journal_id, item.connection_id) == (row.id, SOURCE)
    assert (item.error_class, item.owner_role, item.status) == ("conflict", "operator", "open")
    for words in ("Appointment/apt-1", "versionId 2", "versionId 3", newest.message_id):
        assert words in item.summary, words
    assert "MSH" not in item.summary and stale.reason == row.status_reason
    assert item.detail["original_message_id"] == newest.message_id
    assert PATIENT_NAME not in item.summary + json.dumps(item.detail) + str(stale.reason)


def test_an_older_version_sent_again_is_a_duplicate_of_it_not_a_stale_version(engine):
    """A late retry of a version already taken is answered as a duplicate: nothing
    to route, and nothing for an operator to look at."""
    sb = journaled(engine)
    second = post(sb, appointment("booked", version_id="2"))
    post(sb, appointment("cancelled", version_id="3"))
    again = post(sb, appointment("booked", version_id="2"))
    assert again.kind == "duplicate" and again.original_message_id == second.message_id
    assert exceptions(engine) == []


def test_a_fhir_conflict_speaks_of_the_resource_and_its_version_not_of_msh(engine):
    sb = journaled(engine)
    first = post(sb, appointment("booked", version_id="4"))
    clash = post(sb, appointment("cancelled", version_id="4"))
    assert clash.kind == "conflict" and clash.original_message_id == first.message_id
    (item,) = exceptions(engine)
    assert "Appointment/apt-1" in item.summary and "versionId 4" in item.summary
    assert "MSH" not in item.summary and PATIENT_NAME not in item.summary


def test_a_bundle_identifier_sent_again_with_other_content_is_a_conflict_in_fhir_words(
        engine):
    """A Bundle filed under its business identifier is one submission: other content
    under the same identifier stays a conflict, worded for FHIR."""
    sb = journaled(engine)

    def bundle(value: int) -> bytes:
        return json.dumps({
            "resourceType": "Bundle", "type": "collection",
            "identifier": {"system": "urn:portal:submissions", "value": "S-1001"},
            "entry": [{"resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "valueQuantity": {"value": value, "unit": "/min"}}}],
        }).encode()

    first = post(sb, bundle(128))
    assert post(sb, bundle(128)).kind == "duplicate"
    clash = post(sb, bundle(64))
    assert clash.kind == "conflict" and clash.original_message_id == first.message_id
    (item,) = exceptions(engine)
    assert "Bundle.identifier" in item.summary and "MSH" not in item.summary


def test_hl7_v2_conflicts_keep_their_msh_wording(engine):
    adt = ("MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500||ADT^A08^ADT_A01|CTL9|P|"
           "2.5.1\rPID|1||MRN1^^^RIVERSIDE^MR||DOE^JANE\r")
    sb = journaled(engine)
    first = sb.ingest(Received(adt.encode(), "ehr-adt-feed")).journaled
    clash = sb.ingest(Received(adt.replace("JANE", "JOAN").encode(), "ehr-adt-feed")).journaled
    assert first is not None and clash is not None and clash.kind == "conflict"
    (item,) = exceptions(engine)
    assert item.summary == (f"same MSH-3/MSH-4/MSH-10 as message {first.message_id}, "
                            "different content")


@contextmanager
def newest_version_held(engine: Engine, resource: str) -> Iterator[Any]:
    """On PostgreSQL, a transaction that holds the row naming ``resource``'s newest
    version, so that two writers both read it before either can replace it; yields a
    wait for ``n`` writers blocked behind it. SQLite lets one writer in at a time, so
    there is nothing to hold."""
    if engine.dialect.name != "postgresql":
        yield lambda n: None
        return
    with engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM newest_versions WHERE source = :source "
                            "AND control_id = :resource FOR UPDATE"),
                       {"source": SOURCE, "resource": resource})

        def blocked(n: int) -> None:
            with engine.connect() as probe:
                wait_until(lambda: probe.scalar(text(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted")) >= n,
                    what=f"{n} journal writers waiting for the newest version")

        yield blocked
        holder.commit()


def test_two_updates_racing_do_not_both_become_the_newest_version(engine):
    """Two engines' journal writers take versions 2 and 3 of one resource at once: only
    one of them may replace version 1. The other finds the version that won and is
    either an update after it (3 after 2) or a stale version (2 after 3)."""
    upgrade(engine)
    writers = [Journal(engine), Journal(engine)]  # two writers: two processes' worth
    try:
        first = writers[0].record(Received(appointment("booked", version_id="1"), SOURCE,
                                           format=FHIR_R4))
        with newest_version_held(engine, "Appointment/apt-1") as wait_for_writers:
            futures = [writer.submit(Received(appointment(status, version_id=version),
                                              SOURCE, format=FHIR_R4))
                       for writer, (status, version) in zip(
                           writers, (("cancelled", "2"), ("noshow", "3")), strict=True)]
            wait_for_writers(2)
        two, three = (future.result(timeout=60) for future in futures)
        if two.kind == "update":  # 2 won the race; 3 came after it
            assert two.previous_message_id == first.message_id
            assert (three.kind, three.previous_message_id) == ("update", two.message_id)
        else:  # 3 won; 2 is older than it
            assert (three.kind, three.previous_message_id) == ("update", first.message_id)
            assert (two.kind, two.original_message_id) == ("stale", three.message_id)
        # Version 3 is the newest: the same body is its duplicate, a fourth follows it.
        again = writers[0].record(Received(appointment("noshow", version_id="3"), SOURCE,
                                           format=FHIR_R4))
        assert (again.kind, again.original_message_id) == ("duplicate", three.message_id)
        fourth = writers[1].record(Received(appointment("booked", version_id="4"), SOURCE,
                                            format=FHIR_R4))
        assert (fourth.kind, fourth.previous_message_id) == ("update", three.message_id)
        with Session(engine) as session:
            waiting = session.scalar(select(func.count()).select_from(JournalEntry).where(
                JournalEntry.status == "received"))
        assert waiting == (4 if two.kind == "update" else 3)
    finally:
        for writer in writers:
            writer.close()


def test_a_resource_journaled_before_the_upgrade_is_the_version_later_ones_follow(engine):
    """A resource journaled by a Switchboard that took every later version for a
    conflict: once upgraded, its versionId still says which later version is newer."""
    upgrade(engine, "0009")
    raw = appointment("booked", version_id="3")
    legacy_id = "00000000-0000-4000-8000-000000000003"
    legacy = JournalEntry(
        message_id=legacy_id, received_at=NOW, source=SOURCE,
        format=FHIR_R4, sending_application="", sending_facility="",
        control_id="Appointment/apt-1", content_hash=read_fhir(raw).content_hash,
        message_type="Appointment", status="routed", size_bytes=len(raw), raw=raw,
        is_original=True)
    with Session(engine) as session, session.begin():
        session.add(legacy)
    sb = journaled(engine)
    stale = post(sb, appointment("cancelled", version_id="2"))
    assert (stale.kind, stale.original_message_id) == ("stale", legacy_id)
    again = post(sb, raw)
    assert (again.kind, again.original_message_id) == ("duplicate", legacy_id)
    newer = post(sb, appointment("cancelled", version_id="4"))
    assert (newer.kind, newer.previous_message_id) == ("update", legacy_id)


def test_a_version_id_longer_than_a_fhir_id_is_rejected_alike_on_both_stores(engine):
    """FHIR's id (meta.versionId's type) holds at most 64 characters, as the column
    that keeps the newest version does: PostgreSQL refused a longer one when storing
    it (the message was journaled as a store failure), while SQLite kept it."""
    sb = journaled(engine)
    result = sb.ingest(Received(appointment(version_id="7" * 65), SOURCE, format=FHIR_R4))
    assert result.journaled is not None and result.journaled.kind == "rejected"
    reason = str(result.journaled.error)
    assert "meta.versionId" in reason and "64" in reason
    assert result.journaled.error.location == "Appointment.meta.versionId"
    assert post(sb, appointment(version_id="7" * 64)).kind == "received"
