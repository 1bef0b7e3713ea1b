"""The outbox's chain indexes: partial indexes on deliveries by (destination,
patient_key, sequence, id), one holding the deliveries that have not ended (pending,
retrying, in flight, held) and one only those that keep their chain standing still
(retrying, in flight, held). A claim now looks for the chains that can move in SQL,
with one probe of a few index steps per delivery; with only the full (destination,
patient_key, sequence) index, each probe walked the chain's delivered history.

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

_COLUMNS = ["destination", "patient_key", "sequence", "id"]
_BLOCKING = sa.text("status IN ('pending', 'retrying', 'in_flight', 'held')")
_STALLING = sa.text("status IN ('retrying', 'in_flight', 'held')")


def upgrade() -> None:
    op.create_index("ix_deliveries_blocking", "deliveries", _COLUMNS,
                    sqlite_where=_BLOCKING, postgresql_where=_BLOCKING)
    op.create_index("ix_deliveries_stalling", "deliveries", _COLUMNS,
                    sqlite_where=_STALLING, postgresql_where=_STALLING)


def downgrade() -> None:
    op.drop_index("ix_deliveries_stalling", table_name="deliveries")
    op.drop_index("ix_deliveries_blocking", table_name="deliveries")
