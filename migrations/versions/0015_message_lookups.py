"""The message log's search: lookup keys (engine.lookup_keys) for each journaled
message's control id, patient and values at the indexed HL7 paths, one index walked in
received order; the journal by received time, for the log with no key to narrow it; and
each user's saved searches.

Messages already journaled get their keys here, read from their stored bodies by the
engine's own functions, as the journal and the pipeline would have written them (the
paths indexed are those configured for this process: SWITCHBOARD_INDEXED_PATHS).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 07:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 500


def upgrade() -> None:
    lookups = op.create_table(
        "message_lookups",
        sa.Column("journal_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["journal_id"], ["journal.id"],
                                name=op.f("fk_message_lookups_journal_id_journal")),
        sa.PrimaryKeyConstraint("journal_id", "kind", "key", name=op.f("pk_message_lookups")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_message_lookups_search", "message_lookups",
                    ["kind", "key", "received_at", "journal_id"])
    op.create_index("ix_journal_received_at", "journal", ["received_at"])
    op.create_table(
        "saved_searches",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_searches")),
        sa.UniqueConstraint("owner", "name", name=op.f("uq_saved_searches_owner")),
    )
    _keys_for_the_journal(lookups)


def downgrade() -> None:
    op.drop_table("saved_searches")
    op.drop_index("ix_journal_received_at", table_name="journal")
    op.drop_index("ix_message_lookups_search", table_name="message_lookups")
    op.drop_table("message_lookups")


def _keys_for_the_journal(lookups: sa.Table) -> None:
    from engine.indexed_paths import IndexedPaths
    from engine.message_lookups import stored_keys

    indexed = IndexedPaths.configured()
    journal = sa.table(
        "journal", sa.column("id", sa.Integer), sa.column("received_at", sa.DateTime),
        sa.column("format", sa.String), sa.column("raw", sa.LargeBinary),
        sa.column("control_id", sa.String), sa.column("status", sa.String))
    connection = op.get_bind()
    after = 0
    while True:
        entries = connection.execute(
            sa.select(journal).where(journal.c.id > after).order_by(journal.c.id)
            .limit(_BATCH)).all()
        if not entries:
            return
        rows: list[dict[str, Any]] = [
            {"journal_id": entry.id, "kind": kind, "key": key,
             "received_at": entry.received_at}
            for entry in entries
            for kind, key in stored_keys(entry.format or "hl7v2", entry.raw,
                                         entry.control_id, entry.status, indexed)]
        if rows:
            connection.execute(lookups.insert(), rows)
        after = entries[-1].id
