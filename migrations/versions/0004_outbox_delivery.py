"""Outbox delivery: each delivery records why its last attempt failed and when it was
delivered; exceptions carry when and to whom they escalate; a task created by a
delivery carries that delivery's idempotency key, so a retried delivery never makes a
second task; a task records who decided it.

The claim index (status, sequence, id) lets delivery workers take the oldest pending
deliveries in order without sorting the whole backlog.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("error_class", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("delivered_at", _MOMENT, nullable=True))
        batch.create_index("ix_deliveries_pending", ["status", "sequence", "id"])
    with op.batch_alter_table("exceptions") as batch:
        batch.add_column(sa.Column("escalate_at", _MOMENT, nullable=True))
        batch.add_column(sa.Column("escalate_to", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("escalated_at", _MOMENT, nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("decided_by", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_tasks_idempotency_key", ["idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint("uq_tasks_idempotency_key", type_="unique")
        batch.drop_column("decided_by")
        batch.drop_column("idempotency_key")
    with op.batch_alter_table("exceptions") as batch:
        batch.drop_column("escalated_at")
        batch.drop_column("escalate_to")
        batch.drop_column("escalate_at")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_pending")
        batch.drop_column("delivered_at")
        batch.drop_column("last_error")
        batch.drop_column("error_class")
