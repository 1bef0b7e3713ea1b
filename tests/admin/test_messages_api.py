"""Reprocessing a message over REST on SQLite and PostgreSQL: operators (and admins)
only, the answer says what was added, a message in no state to be routed is a 409
saying why, and the reason stays out of the audit trail."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.pipeline import Pipeline
from engine.store.models import AuditEvent
from tests.queue_rows import entry, ingest, sample

ADMISSION = "fhir-converter/ADT-A01-01.hl7"


def test_reprocess_needs_a_token_and_an_operator(api, engine):
    _, message_id = entry(engine)
    url = f"/api/messages/{message_id}/reprocess"
    status, body = api.call("POST", url)
    assert status == 401
    for name in ("anna", "carl", "cora", "abe", "rita"):
        status, body = api.call("POST", url, as_user=name)
        assert status == 403 and "operator" in body["reason"], name


def test_reprocess_routes_again_and_says_what_it_added(api, engine):
    message_id = ingest(engine, sample(ADMISSION))
    assert Pipeline(engine).run_once() == 1
    status, body = api.call("POST", f"/api/messages/{message_id}/reprocess",
                            as_user="olive", json={"reason": "checking the routes"})
    assert status == 200
    assert body == {"message_id": message_id, "outcome": "routed", "rule_set_version": 1,
                    "added": []}  # the same rules: nothing was missing
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "message.reprocess")).one()
    assert event.actor == "olive" and "checking" not in str(event.detail)
    assert api.call("POST", f"/api/messages/{message_id}/reprocess", as_user="adam")[0] == 200


def test_reprocess_refuses_what_cannot_be_routed(api, engine):
    _, waiting = entry(engine, status="received")
    status, body = api.call("POST", f"/api/messages/{waiting}/reprocess", as_user="olive")
    assert status == 409 and "waiting to be routed already" in body["reason"]
    assert api.call("POST", "/api/messages/nope/reprocess", as_user="olive")[0] == 404
    status, body = api.call("POST", f"/api/messages/{waiting}/reprocess", as_user="olive",
                            json={"reason": "  "})
    assert status == 400 and '"reason"' in body["reason"]
