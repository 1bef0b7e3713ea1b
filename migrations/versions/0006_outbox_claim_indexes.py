"""The outbox claim's indexes, all partial: deliveries by (destination, patient_key,
sequence, id), one holding the deliveries that have not ended (pending, retrying, in
flight, held) and one only those that keep their chain standing still (retrying, in
flight, held); and the journal's messages still waiting to be routed (received,
routing) by (patient_key, id). A claim now looks for the chains that can move in SQL,
with a probe of a few index steps per delivery: with only the full (destination,
patient_key, sequence) index each probe walked the chain's delivered history, and a
patient's unrouted messages could only be found among every patient's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CHAIN = ["destination", "patient_key", "sequence", "id"]
_BLOCKING = sa.text("status IN ('pending', 'retrying', 'in_flight', 'held')")
_STALLING = sa.text("status IN ('retrying', 'in_flight', 'held')")
_UNROUTED = sa.text("status IN ('received', 'routing')")


def upgrade() -> None:
    op.create_index("ix_deliveries_blocking", "deliveries", _CHAIN,
                    sqlite_where=_BLOCKING, postgresql_where=_BLOCKING)
    op.create_index("ix_deliveries_stalling", "deliveries", _CHAIN,
                    sqlite_where=_STALLING, postgresql_where=_STALLING)
    op.create_index("ix_journal_unrouted", "journal", ["patient_key", "id"],
                    sqlite_where=_UNROUTED, postgresql_where=_UNROUTED)


def downgrade() -> None:
    op.drop_index("ix_journal_unrouted", table_name="journal")
    op.drop_index("ix_deliveries_stalling", table_name="deliveries")
    op.drop_index("ix_deliveries_blocking", table_name="deliveries")
