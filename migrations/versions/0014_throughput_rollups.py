"""Throughput rollups: per connection and minute, the messages received, routed,
delivered and failed, the deepest outbox queue sampled, and the delivery latencies
counted in log-spaced buckets, so the operator's charts read the store (the same on
every engine, and after a restart) rather than a process's memory. Minutes older than
two days are merged into hours; hours older than 90 days are deleted.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _period() -> list[sa.Column]:
    return [
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("resolution", sa.String(length=8), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "connection_minutes",
        *_period(),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("routed", sa.BigInteger(), nullable=False),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("queue_depth", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("connection_id", "resolution", "starts_at",
                                name=op.f("pk_connection_minutes")),
    )
    op.create_index("ix_connection_minutes_period", "connection_minutes",
                    ["resolution", "starts_at"])
    op.create_table(
        "connection_minute_latencies",
        *_period(),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("deliveries", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "resolution", "starts_at", "bucket",
                                name=op.f("pk_connection_minute_latencies")),
    )
    op.create_index("ix_connection_minute_latencies_period", "connection_minute_latencies",
                    ["resolution", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_connection_minute_latencies_period",
                  table_name="connection_minute_latencies")
    op.drop_table("connection_minute_latencies")
    op.drop_index("ix_connection_minutes_period", table_name="connection_minutes")
    op.drop_table("connection_minutes")
