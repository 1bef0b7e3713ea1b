"""Console sign-in: local passwords (argon2id) and an optional TOTP second factor per
user, LDAP users beside local ones, server-side console sessions (so an idle or
absolute timeout, a sign-out or a disabled user ends them at once), the sign-in
attempts that rate limits count, and the LDAP group-to-role mapping admins edit.
Security events are read from the audit trail by action, hence its action index.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("source", sa.String(length=16), nullable=False,
                                   server_default="local"))
        users.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        users.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        users.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        users.add_column(sa.Column("extra_roles", sa.JSON(), nullable=True))
        users.add_column(sa.Column("theme", sa.String(length=16), nullable=False,
                                   server_default="light"))
    op.create_table(
        "console_sessions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_console_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    op.create_index("ix_console_sessions_user_id", "console_sessions", ["user_id"])
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempts")),
    )
    op.create_index("ix_sign_in_attempts_username", "sign_in_attempts", ["username", "at"])
    op.create_index("ix_sign_in_attempts_address", "sign_in_attempts", ["address", "at"])
    op.create_table(
        "ldap_role_mappings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("group_name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ldap_role_mappings")),
        sa.UniqueConstraint("group_name", "role", name=op.f("uq_ldap_role_mappings_group_name")),
    )
    op.create_index("ix_audit_events_action", "audit_events", ["action", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_table("ldap_role_mappings")
    op.drop_index("ix_sign_in_attempts_address", table_name="sign_in_attempts")
    op.drop_index("ix_sign_in_attempts_username", table_name="sign_in_attempts")
    op.drop_table("sign_in_attempts")
    op.drop_index("ix_console_sessions_user_id", table_name="console_sessions")
    op.drop_table("console_sessions")
    with op.batch_alter_table("users") as users:
        for column in ("theme", "extra_roles", "totp_last_step", "totp_secret",
                       "password_hash", "source"):
            users.drop_column(column)
