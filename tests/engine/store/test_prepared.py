"""Prepared statements store exactly what Core stores, on both databases, and fail
with SQLAlchemy's exceptions, never quoting the values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, Table, bindparam, select, text, update
from sqlalchemy.exc import IntegrityError

from engine.store.database import open_engine
from engine.store.migrate import upgrade
from engine.store.models import Delivery, JournalEntry, StageEvent
from engine.store.prepared import Prepared

JOURNAL: Table = JournalEntry.__table__  # type: ignore[assignment]
STAGES: Table = StageEvent.__table__  # type: ignore[assignment]
DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
SECRET = "DOE^JANE"  # stands for message content: it must never reach an error's text


def _journal_row(message_id: str) -> dict[str, object]:
    return {
        "message_id": message_id, "received_at": datetime(2026, 11, 24, 9, tzinfo=UTC),
        "source": "feed", "peer": None, "status": "received", "size_bytes": 3,
        "raw": SECRET.encode(), "is_original": True, "format": "hl7v2",
        "sending_application": "APP", "sending_facility": "FAC", "control_id": message_id,
        "content_hash": "h", "message_type": "ADT", "event": "A01", "patient_key": None,
        "status_reason": None, "rule_set_version": None,
    }


@pytest.fixture
def store(engine: Engine) -> Engine:
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(JOURNAL.insert(), [_journal_row("core")])
    return engine


def _delivery(journal_id: int, key: str, payload: object,
              created: datetime) -> dict[str, object]:
    return {
        "journal_id": journal_id, "destination": "lab", "patient_key": "p",
        "sequence": journal_id, "status": "pending", "idempotency_key": key,
        "payload": payload, "media_type": None, "body": None, "held_by_row": None,
        "attempts": 0, "next_attempt_at": None, "created_at": created,
        "updated_at": created,
    }


def test_prepared_insert_stores_what_core_stores(store: Engine) -> None:
    columns = list(_delivery(1, "k", {}, datetime.now(UTC)))
    prepared = Prepared.insert(DELIVERIES, columns, store.dialect)
    # An instant in another zone, JSON with a None inside and a JSON null payload.
    created = datetime(2026, 11, 24, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    payloads = [{"a": [1, None], "ü": "x"}, None]
    with store.begin() as connection:
        journal_id = connection.execute(select(JOURNAL.c.id)).scalar_one()
        for number, payload in enumerate(payloads):
            connection.execute(DELIVERIES.insert(),
                               [_delivery(journal_id, f"core-{number}", payload, created)])
        prepared.execute_many(connection, [
            _delivery(journal_id, f"prepared-{number}", payload, created)
            for number, payload in enumerate(payloads)])
    with store.connect() as connection:
        stored = {row.idempotency_key: row for row in connection.execute(
            select(DELIVERIES.c.idempotency_key, DELIVERIES.c.payload,
                   DELIVERIES.c.created_at))}
        # What the database itself holds, not only what SQLAlchemy reads back.
        as_text = dict(connection.execute(text(
            "SELECT idempotency_key, CAST(payload AS TEXT) FROM deliveries")).all())
    for number, payload in enumerate(payloads):
        core, mine = stored[f"core-{number}"], stored[f"prepared-{number}"]
        assert mine.payload == core.payload == payload
        assert mine.created_at == core.created_at == created
        assert as_text[f"prepared-{number}"] == as_text[f"core-{number}"]


def test_prepared_update_binds_by_name(store: Engine) -> None:
    statement = update(JOURNAL).where(JOURNAL.c.message_id == bindparam("key")).values(
        status=bindparam("new_status"), rule_set_version=bindparam("version"))
    prepared = Prepared(statement, store.dialect)
    with store.begin() as connection:
        prepared.execute_many(connection, [{"key": "core", "new_status": "routed",
                                            "version": 7}])
    with store.connect() as connection:
        row = connection.execute(select(JOURNAL.c.status, JOURNAL.c.rule_set_version)).one()
    assert tuple(row) == ("routed", 7)


def test_prepared_insert_returns_the_new_row_id(tmp_path: Path) -> None:
    """SQLite reports a new id as the cursor's lastrowid (PostgreSQL uses RETURNING)."""
    store = open_engine(f"sqlite:///{tmp_path / 'ids.db'}")
    upgrade(store)
    prepared = Prepared.insert(JOURNAL, list(_journal_row("x")), store.dialect)
    with store.begin() as connection:
        new_id = prepared.execute(connection, _journal_row("prepared")).lastrowid
        assert connection.execute(select(JOURNAL.c.message_id).where(
            JOURNAL.c.id == new_id)).scalar_one() == "prepared"
    store.dispose()


def test_a_missing_value_is_an_error_not_a_null(store: Engine) -> None:
    row = _journal_row("incomplete")
    prepared = Prepared.insert(JOURNAL, list(row), store.dialect)
    del row["source"]
    with pytest.raises(KeyError), store.begin() as connection:
        prepared.execute_many(connection, [row])


def test_driver_errors_are_sqlalchemy_errors_without_the_values(store: Engine) -> None:
    prepared = Prepared.insert(JOURNAL, list(_journal_row("x")), store.dialect)
    with pytest.raises(IntegrityError) as raised, store.begin() as connection:
        prepared.execute_many(connection, [_journal_row("core")])  # message_id is unique
    assert SECRET not in str(raised.value)
    assert "DOE" not in repr(raised.value)
    # The transaction rolled back and the connection is usable again.
    with store.begin() as connection:
        stage = Prepared.insert(STAGES, ["journal_id", "stage", "at", "rule_set_version",
                                         "detail"], store.dialect)
        journal_id = connection.execute(select(JOURNAL.c.id)).scalar_one()
        stage.execute_many(connection, [{"journal_id": journal_id, "stage": "parsed",
                                         "at": datetime.now(UTC), "rule_set_version": None,
                                         "detail": None}])
