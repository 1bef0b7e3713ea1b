"""Alembic environment for Switchboard: run with ``switchboard db upgrade``."""

from __future__ import annotations

from alembic import context

from engine.store.database import open_engine
from engine.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = open_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as opened:
        _run(opened)
    engine.dispose()


def _run(connection: object) -> None:
    # Batch mode: SQLite cannot ALTER most things, so Alembic rebuilds the table.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Switchboard runs migrations online: switchboard db upgrade")
run_migrations()
