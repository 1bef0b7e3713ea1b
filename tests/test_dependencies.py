"""The declared runtime dependencies install and import on this Python."""

from __future__ import annotations

import importlib
import sys

import pytest

RUNTIME = [
    "flask", "flask_admin", "sqlalchemy", "alembic", "durable.lang", "jsonschema",
    "apscheduler", "ldap3", "yaml",
]


@pytest.mark.parametrize("module", RUNTIME)
def test_runtime_dependency_imports(module):
    importlib.import_module(module)


def test_supported_python():
    assert (3, 11) <= sys.version_info[:2] <= (3, 12)


def test_sqlalchemy_is_2x():
    import sqlalchemy

    assert sqlalchemy.__version__.startswith("2.")
