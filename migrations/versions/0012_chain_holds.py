"""Chain holds: under ``ordering: strict`` (the catalog's default) a dead letter holds
its patient's later deliveries to its destination, and a message failed in the pipeline
holds its patient's later messages from its source, until an operator retries,
reprocesses, skips or resolves it. Only the holds in force are rows here, so a claim's
or a pipeline pass's probe for one takes a few index steps, and the delivery and
journal statuses (with the outbox's partial indexes on them) are unchanged.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "chain_holds",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("patient_key", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", _ID, nullable=True),
        sa.Column("journal_id", _ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"],
                                name=op.f("fk_chain_holds_delivery_id_deliveries")),
        sa.ForeignKeyConstraint(["journal_id"], ["journal.id"],
                                name=op.f("fk_chain_holds_journal_id_journal")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_holds")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_chain_holds_delivery_id")),
    )
    op.create_index("ix_chain_holds_chain", "chain_holds",
                    ["kind", "connection_id", "patient_key", "sequence", "delivery_id"])
    op.create_index("ix_chain_holds_journal_id", "chain_holds", ["journal_id"])


def downgrade() -> None:
    op.drop_index("ix_chain_holds_journal_id", table_name="chain_holds")
    op.drop_index("ix_chain_holds_chain", table_name="chain_holds")
    op.drop_table("chain_holds")
