"""A journal entry's peer holds a drop folder's whole file name (up to 255 bytes), not
only an address: the column takes engine.store.limits.PEER characters.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.alter_column("peer", type_=sa.String(length=255),
                           existing_type=sa.String(length=128), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.alter_column("peer", type_=sa.String(length=128),
                           existing_type=sa.String(length=255), existing_nullable=True)
