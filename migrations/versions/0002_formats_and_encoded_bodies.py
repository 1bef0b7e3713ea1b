"""Formats and encoded bodies: the journal records each message's format (HL7 v2 or
FHIR R4), and a delivery keeps the body encoded for its destination with its media
type, beside the minimised canonical payload.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 12:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("format", sa.String(length=16), nullable=False,
                                   server_default="hl7v2"))
        # FHIR resource types are longer than HL7 message types.
        batch.alter_column("message_type", type_=sa.String(length=40),
                           existing_type=sa.String(length=16), existing_nullable=True)
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("media_type", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("body", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("body")
        batch.drop_column("media_type")
    with op.batch_alter_table("journal") as batch:
        batch.alter_column("message_type", type_=sa.String(length=16),
                           existing_type=sa.String(length=40), existing_nullable=True)
        batch.drop_column("format")
