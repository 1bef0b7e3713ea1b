"""The store's schema: migrations build it on SQLite and PostgreSQL, match the models,
and SQLite is opened durably."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from engine.cli import main
from engine.store.migrate import downgrade, upgrade
from engine.store.models import Base, JournalEntry, StageEvent

TABLES = {
    "journal", "stage_events", "deliveries", "exceptions", "tasks", "rule_set_versions",
    "catalog_connections", "users", "api_tokens", "audit_events",
}


def test_migrations_build_every_table(engine):
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_migrations_match_the_models(engine):
    upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_constraints_follow_the_naming_convention(engine):
    upgrade(engine)
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("journal")["name"] == "pk_journal"
    assert {u["name"] for u in inspector.get_unique_constraints("journal")} == {
        "uq_journal_message_id"
    }
    foreign = inspector.get_foreign_keys("stage_events")[0]
    assert foreign["name"] == "fk_stage_events_journal_id_journal"


def test_downgrade_then_upgrade(engine):
    upgrade(engine)
    downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_journal_round_trip_keeps_bytes_and_offsets(engine):
    upgrade(engine)
    raw = b"\x0bMSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rPID|1||\xff\x00\r\x1c\r"
    received = datetime(2026, 11, 24, 10, 15, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    message_id = str(uuid.uuid4())
    with Session(engine) as session, session.begin():
        entry = JournalEntry(
            message_id=message_id, received_at=received, source="ehr-adt-feed",
            control_id="1", status="received", size_bytes=len(raw), raw=raw,
        )
        session.add(entry)
        session.flush()
        session.add(StageEvent(journal_id=entry.id, stage="journaled", at=received,
                               detail={"peer": "127.0.0.1"}))
    with Session(engine) as session:
        stored = session.scalars(select(JournalEntry)).one()
        assert stored.raw == raw
        assert stored.message_id == message_id
        assert stored.received_at == received  # the same instant, read back in UTC
        assert stored.received_at.tzinfo == UTC
        event = session.scalars(select(StageEvent)).one()
        assert event.detail == {"peer": "127.0.0.1"}


def test_naive_times_are_refused(engine):
    upgrade(engine)
    with Session(engine) as session, pytest.raises(Exception, match="naive datetime"):
        session.add(JournalEntry(message_id="x", received_at=datetime(2026, 1, 1),
                                 source="s", status="received", size_bytes=0))
        session.flush()


def test_sqlite_is_durable_and_checks_foreign_keys(engine):
    if engine.dialect.name != "sqlite":
        assert engine.dialect.driver == "psycopg"
        return
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_db_upgrade_command(engine, capsys):
    url = engine.url.render_as_string(hide_password=False)
    assert main(["db", "upgrade", "--database", url]) == 0
    assert "is up to date" in capsys.readouterr().out
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert main(["db", "upgrade", "--database", url]) == 0  # idempotent
