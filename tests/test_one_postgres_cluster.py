"""The session shares one PostgreSQL server. A session-scoped fixture that a conftest
imports is a fixture of that folder's own, started once more and stopped at the end
of the session: six conftests once started six private clusters, and their teardown
alone took half a minute."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent
# A definition of the fixture, or an import that makes it the conftest's own.
HOLDS = re.compile(r"^(def postgres_server|from .* import .*\bpostgres_server\b)",
                   re.MULTILINE)


def test_postgres_server_is_defined_once_for_the_whole_session():
    holders = sorted(str(path.relative_to(TESTS)) for path in TESTS.rglob("conftest.py")
                     if HOLDS.search(path.read_text()))
    assert holders == ["conftest.py"]
