"""The web process and SQLite's one writer lock: an API call only reads, so it is
answered while another connection holds the lock; HTTP ingest that gets no turn on the
lock in time answers 503, and 202 again once the holder lets go (issue 13, defect 7)."""

from __future__ import annotations

from sqlalchemy import select

from admin import create_app
from engine.store import database
from engine.store.database import open_engine, reader
from engine.store.models import ApiToken
from tests.queue_rows import ROOT, prepared, sample
from tests.writer_lock import ANSWER_LIMIT, on_a_thread, writer_lock_held

REFERRAL = "fhir-converter/REF-I12-01.hl7"


def test_an_api_call_is_answered_while_another_connection_holds_the_writer_lock(tmp_path):
    """Authenticating a token wrote its last-used time on the writing engine, so every
    API call queued for the writers' lock, behind the journal's commits (and forever
    while a writer held it). It must read only, and write nothing for the call."""
    url = f"sqlite:///{tmp_path / 'sb.db'}"
    store = open_engine(url)
    tokens = prepared(store, {"olive": "operator"})
    app = create_app({"DATABASE_URL": url, "CONFIG_ROOT": str(ROOT), "TESTING": True})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {tokens['olive']}"}
    try:
        with writer_lock_held(url):
            answer = on_a_thread(lambda: client.get("/api/messages", headers=headers))
            response = answer.result(ANSWER_LIMIT)
            assert response.status_code == 200, response.get_json()
        with reader(store).connect() as connection:
            assert connection.scalar(select(ApiToken.last_used_at)) is None
        app.extensions["switchboard"].close()  # a clean shutdown writes the use
        with reader(store).connect() as connection:
            assert connection.scalar(select(ApiToken.last_used_at)) is not None
    finally:
        app.extensions["switchboard"].close()
        store.dispose()


def test_http_ingest_answers_503_while_another_writer_keeps_the_lock_then_202(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setattr(database, "WRITER_LOCK_TIMEOUT", 0.5, raising=False)
    monkeypatch.setenv("SWITCHBOARD_PARTNER_REFERRALS_TOKEN", "partner-token")
    url = f"sqlite:///{tmp_path / 'sb.db'}"
    store = open_engine(url)
    prepared(store, {})
    app = create_app({"DATABASE_URL": url, "CONFIG_ROOT": str(ROOT), "TESTING": True})
    client = app.test_client()

    def post():
        return client.post("/ingest/partner-referrals", data=sample(REFERRAL),
                           headers={"Authorization": "Bearer partner-token",
                                    "Content-Type": "application/hl7-v2"})

    try:
        with writer_lock_held(url):
            refused = on_a_thread(post).result(ANSWER_LIMIT)
        assert refused.status_code == 503, refused.get_json()
        assert "send it again" in refused.get_json()["reason"]
        accepted = post()
        assert accepted.status_code == 202, accepted.get_json()
    finally:
        app.extensions["switchboard"].close()
        store.dispose()
