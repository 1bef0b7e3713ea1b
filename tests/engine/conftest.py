from tests.engine.store.conftest import engine, postgres_server  # noqa: F401
