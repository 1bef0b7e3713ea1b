"""Parked deliveries: a pending delivery behind a head that waits (a retry, a hold)
carries when to look at it again in ``next_attempt_at``, and a claim walks only the
ready ones (pending, not parked) through a partial index of their order. This replaces
the index of every pending delivery, which a claim walked in full, parked or not, so
that a destination down for hours made every claim slower as its backlog grew.

The journal's patient index becomes (patient_key, received_at): as (patient_key) alone,
with the rowid after it, SQLite found it as good as ix_journal_unrouted for a claim's
probe of a patient's unrouted messages, chose between them at random, and walked the
patient's whole history when it chose it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_READY = sa.text("status = 'pending' AND next_attempt_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_deliveries_ready", "deliveries", ["sequence", "id"],
                    sqlite_where=_READY, postgresql_where=_READY)
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    op.create_index("ix_journal_patient", "journal", ["patient_key", "received_at"])
    op.drop_index("ix_journal_patient_key", table_name="journal")


def downgrade() -> None:
    op.create_index("ix_journal_patient_key", "journal", ["patient_key"])
    op.drop_index("ix_journal_patient", table_name="journal")
    op.create_index("ix_deliveries_pending", "deliveries", ["status", "sequence", "id"])
    op.drop_index("ix_deliveries_ready", table_name="deliveries")
