"""Change control: a rule-set version carries its change summary and the steps of its
review (submitted, approved or rejected with a reason, published, superseded, and the
version a rollback restores); impact previews keep their progress and report per
content hash; audit events record the content hashes before and after a change and
its reason.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_MOMENT = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("rule_set_versions") as batch:
        batch.add_column(sa.Column("summary", sa.Text(), nullable=True))
        batch.add_column(sa.Column("updated_at", _MOMENT, nullable=True))
        batch.add_column(sa.Column("submitted_at", _MOMENT, nullable=True))
        batch.add_column(sa.Column("approved_at", _MOMENT, nullable=True))
        batch.add_column(sa.Column("rejected_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("rejected_at", _MOMENT, nullable=True))
        batch.add_column(sa.Column("review_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("published_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("superseded_at", _MOMENT, nullable=True))
        batch.add_column(sa.Column("restores_version", sa.Integer(), nullable=True))
        batch.create_index("ix_rule_set_versions_status", ["status"])
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("before_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("after_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
    op.create_table(
        "impact_previews",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("rule_set_version_id", _ID, nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("baseline_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", _MOMENT, nullable=False),
        sa.Column("started_at", _MOMENT, nullable=True),
        sa.Column("finished_at", _MOMENT, nullable=True),
        sa.Column("progress_at", _MOMENT, nullable=True),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("journal_messages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("test_messages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("overridden_by", sa.String(length=64), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["rule_set_version_id"], ["rule_set_versions.id"],
                                name=op.f("fk_impact_previews_rule_set_version_id_rule_set_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impact_previews")),
    )
    op.create_index("ix_impact_previews_version_hash", "impact_previews",
                    ["rule_set_version_id", "content_hash"])
    op.create_index("ix_impact_previews_status", "impact_previews", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_impact_previews_status", table_name="impact_previews")
    op.drop_index("ix_impact_previews_version_hash", table_name="impact_previews")
    op.drop_table("impact_previews")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("reason")
        batch.drop_column("after_hash")
        batch.drop_column("before_hash")
    with op.batch_alter_table("rule_set_versions") as batch:
        batch.drop_index("ix_rule_set_versions_status")
        for column in ("restores_version", "superseded_at", "published_by", "review_note",
                       "rejected_at", "rejected_by", "approved_at", "submitted_at",
                       "updated_at", "summary"):
            batch.drop_column(column)
