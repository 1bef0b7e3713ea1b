from tests.engine.store.conftest import engine  # noqa: F401
