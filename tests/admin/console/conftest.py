from tests.admin.console.console_client import console  # noqa: F401
from tests.engine.store.conftest import engine, postgres_server  # noqa: F401
