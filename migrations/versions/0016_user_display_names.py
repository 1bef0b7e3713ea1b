"""Users: an optional display name for people ("Nina Patel, RN"), shown instead of the
login name where set, and a flag that makes a user choose their own password at their
next console sign-in (set when an admin sets one for them in the console).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("display_name", sa.String(length=100), nullable=True))
        users.add_column(sa.Column("password_change_required", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as users:
        for column in ("password_change_required", "display_name"):
            users.drop_column(column)
