from tests.admin.api_client import api  # noqa: F401
from tests.engine.store.conftest import engine  # noqa: F401
