from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from engine.store.database import open_engine
from tests.admin.console.console_client import console  # noqa: F401
from tests.engine.store.conftest import engine  # noqa: F401
from tests.ldap_server import ldap_server, ldap_server_to_stop  # noqa: F401


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    """An empty SQLite store: for browser flows whose behaviour does not depend on the
    store (the message browser's flows run on both, through ``engine``)."""
    opened = open_engine(f"sqlite:///{tmp_path / 'switchboard.db'}")
    try:
        yield opened
    finally:
        opened.dispose()
