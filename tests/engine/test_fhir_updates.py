"""Issue 14, item 1: FHIR updates were taken for conflicts. Versions of one resource
posted to HTTP ingest of a running ``serve``, on SQLite and on PostgreSQL: each newer
version is answered as an update and delivered after the one before it; the same body
again is a duplicate; an older version after a newer one is answered as stale,
journaled, owned in the exception queue and never delivered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.store.models import Delivery, ExceptionItem, JournalEntry
from tests.delivery_config import FHIR_FEED, FHIR_FEED_TOKEN_ENV, delivery_config
from tests.in_process_serve import Serving, serving
from tests.recording_sink import RecordingSink
from tests.waiting import wait_until

TOKEN = "fhir-feed-token-for-tests"


def appointment(resource_id: str, status: str, start: str,
                version_id: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resourceType": "Appointment", "id": resource_id, "status": status,
        "start": f"2026-12-01T{start}:00+00:00", "minutesDuration": 30,
        "participant": [{"status": "accepted", "actor": {
            "reference": "Patient/p-77", "display": "Rosa Quintero"}}],
    }
    if version_id is not None:
        document["meta"] = {"versionId": version_id}
    return document


def post(serve: Serving, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return serve.ingest(FHIR_FEED, TOKEN, json.dumps(document).encode(),
                        "application/fhir+json")


def delivered(sink: RecordingSink, resource: str) -> list[tuple[str, str]]:
    """(status, start) of each delivery of ``resource``'s versions, in delivery order."""
    return [(body["appointments"][0]["status"], body["appointments"][0]["start"][11:16])
            for body in (received.body for received in list(sink.received))
            if body["message"].get("control_id") == resource]


def test_versions_of_a_resource_are_delivered_in_order_and_a_stale_one_is_flagged(
        engine: Engine, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(FHIR_FEED_TOKEN_ENV, TOKEN)
    sink = RecordingSink()
    sink.start()
    try:
        config = delivery_config(tmp_path / "config", sink.url, fhir_feed=True)
        with serving(config, engine.url.render_as_string(hide_password=False),
                     delivery_workers=2) as serve:
            # Booked, then cancelled, with no meta: arrival says which is newer.
            status, booked = post(serve, appointment("apt-1", "booked", "09:00"))
            assert (status, booked["status"]) == (202, "received")
            status, cancelled = post(serve, appointment("apt-1", "cancelled", "09:00"))
            assert (status, cancelled["status"]) == (202, "update")
            assert cancelled["previous_message_id"] == booked["message_id"]
            status, again = post(serve, appointment("apt-1", "cancelled", "09:00"))
            assert (status, again["status"]) == (202, "duplicate")
            assert again["original_message_id"] == cancelled["message_id"]

            # Versions 1, 3, then 2 (stale), then 4.
            status, first = post(serve, appointment("apt-2", "booked", "09:00", "1"))
            assert (status, first["status"]) == (202, "received")
            status, third = post(serve, appointment("apt-2", "booked", "11:00", "3"))
            assert (status, third["status"], third["previous_message_id"]) == (
                202, "update", first["message_id"])
            status, stale = post(serve, appointment("apt-2", "booked", "10:00", "2"))
            assert (status, stale["status"]) == (202, "stale")
            assert stale["original_message_id"] == third["message_id"]
            for words in ("Appointment/apt-2", "versionId 2", "versionId 3"):
                assert words in stale["reason"], words
            assert "MSH" not in stale["reason"] and "Quintero" not in stale["reason"]
            status, fourth = post(serve, appointment("apt-2", "cancelled", "11:00", "4"))
            assert (status, fourth["status"], fourth["previous_message_id"]) == (
                202, "update", third["message_id"])

            wait_until(lambda: len(delivered(sink, "Appointment/apt-2")) >= 3
                       and len(delivered(sink, "Appointment/apt-1")) >= 2,
                       what="every newer version delivered")
        # Version 2 was journaled before version 4, in the same chain: had it been
        # routed, it would have been delivered before version 4.
        assert delivered(sink, "Appointment/apt-1") == [("booked", "09:00"),
                                                        ("cancelled", "09:00")]
        assert delivered(sink, "Appointment/apt-2") == [
            ("booked", "09:00"), ("booked", "11:00"), ("cancelled", "11:00")]
        with Session(engine) as session:
            row = session.scalars(select(JournalEntry).where(
                JournalEntry.message_id == stale["message_id"])).one()
            assert row.status == "stale"
            assert session.scalars(select(Delivery).where(
                Delivery.journal_id == row.id)).all() == []
            item = session.scalars(select(ExceptionItem).where(
                ExceptionItem.journal_id == row.id)).one()
            assert (item.error_class, item.owner_role, item.status, item.connection_id) == (
                "conflict", "operator", "open", FHIR_FEED)
            assert "Appointment/apt-2" in item.summary and "MSH" not in item.summary
            assert session.scalars(select(ExceptionItem).where(
                ExceptionItem.journal_id != row.id)).all() == []
    finally:
        sink.stop()
