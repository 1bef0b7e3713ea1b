"""Security tests run on SQLite and PostgreSQL, like the store's."""

from tests.engine.store.conftest import engine, postgres_server  # noqa: F401
