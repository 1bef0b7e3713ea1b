"""The pipeline's queue index: the journal by status, then id. The pipeline takes the
oldest waiting messages (status 'received', in id order); with only (status,
received_at) to go on, every batch sorted the whole backlog to find its first few, so
a pipeline that fell behind slowed down the further behind it was.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 14:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_journal_status_id", "journal", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_journal_status_id", table_name="journal")
