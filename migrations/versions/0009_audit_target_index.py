"""The audit trail by target: four-eyes reads who changed a rule-set version from the
trail, at every approval and for every listed version, so it is found by index rather
than by reading the whole trail.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_target", "audit_events",
                    ["target_type", "target_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_target", table_name="audit_events")
