"""Security tests run on SQLite and PostgreSQL, like the store's, and against a private
slapd for the LDAP identity source."""

from tests.engine.store.conftest import engine  # noqa: F401
from tests.ldap_server import ldap_server, ldap_server_to_stop  # noqa: F401
