"""The newest version of each FHIR resource: a resource posted again under its
``Type/id`` with other content is a new version (routed after the one before it, or
flagged when it is older than the newest), not a conflict. One row per (source,
``Type/id``), replaced by compare and set, so two versions journaled at once cannot
both become the newest.

Resources already journaled start it: each original filed under ``Type/id`` (not a
Bundle's business identifier), with the meta.versionId and meta.lastUpdated its stored
body says.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_VERSION_ID = 64
_BATCH = 500


def upgrade() -> None:
    newest = op.create_table(
        "newest_versions",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=_VERSION_ID), nullable=True),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", "control_id", name=op.f("pk_newest_versions")),
    )
    _start_from_the_journal(newest)


def downgrade() -> None:
    op.drop_table("newest_versions")


def _start_from_the_journal(newest: sa.Table) -> None:
    journal = sa.table(
        "journal", sa.column("id", sa.Integer), sa.column("source", sa.String),
        sa.column("control_id", sa.String), sa.column("message_id", sa.String),
        sa.column("content_hash", sa.String), sa.column("message_type", sa.String),
        sa.column("format", sa.String), sa.column("is_original", sa.Boolean),
        sa.column("raw", sa.LargeBinary))
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    after = 0
    while True:
        rows = connection.execute(
            sa.select(journal.c.id, journal.c.source, journal.c.control_id,
                      journal.c.message_id, journal.c.content_hash, journal.c.raw)
            .where(journal.c.format == "fhir-r4", journal.c.is_original.is_(True),
                   journal.c.control_id.like(journal.c.message_type + "/%"),
                   journal.c.id > after)
            .order_by(journal.c.id).limit(_BATCH)).all()
        if not rows:
            return
        after = rows[-1].id
        connection.execute(newest.insert(), [
            {"source": row.source, "control_id": row.control_id,
             "message_id": row.message_id, "content_hash": row.content_hash or "",
             **_version(row.raw, sqlite)} for row in rows])


def _version(raw: bytes | None, sqlite: bool) -> dict[str, Any]:
    """meta.versionId and meta.lastUpdated of a stored body (validated when it was
    journaled); what cannot be read is left empty, and arrival order decides."""
    try:
        meta = json.loads(raw or b"").get("meta") or {}
        version_id, last_updated = meta.get("versionId"), meta.get("lastUpdated")
    except (ValueError, AttributeError):
        return {"version_id": None, "last_updated": None}
    if not isinstance(version_id, str) or not 0 < len(version_id) <= _VERSION_ID:
        version_id = None
    moment = None
    if isinstance(last_updated, str):
        try:
            moment = datetime.fromisoformat(last_updated)
        except ValueError:
            moment = None
    if moment is not None:
        moment = None if moment.tzinfo is None else moment.astimezone(UTC)
    if moment is not None and sqlite:
        moment = moment.replace(tzinfo=None)  # stored in UTC, as the store's Moment does
    return {"version_id": version_id, "last_updated": moment}
