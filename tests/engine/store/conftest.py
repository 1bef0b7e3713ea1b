"""Store fixtures: every store test runs on SQLite and on PostgreSQL (the server from
``postgres_server``, in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from engine.store.database import open_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """An empty database of each kind. PostgreSQL tests get a fresh database of their own
    in the server, so they never see each other's rows."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    else:
        url = _fresh_database(request.getfixturevalue("postgres_server"))
    opened = open_engine(url)
    try:
        yield opened
    finally:
        opened.dispose()


def _fresh_database(server_url: str) -> str:
    name = f"switchboard_test_{uuid.uuid4().hex[:12]}"
    admin = open_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return open_engine(server_url).url.set(database=name).render_as_string(hide_password=False)
