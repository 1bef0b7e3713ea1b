"""A prepared store made once per test session and copied for each test that asks for
one, instead of migrating, publishing and adding users every time: a SQLite file is
copied, a PostgreSQL database made from a template database. The copy holds exactly
what a fresh preparation leaves (its audit chain and anchor included); the migrations
themselves are still run, once per session and store, and by their own tests."""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, text

from engine.security.audit_anchor import default_anchor
from engine.store.database import open_engine
from engine.store.migrate import upgrade

Prepare = Callable[[Engine], dict[str, str]]
# Per preparation, dialect and server: the template's URL and the tokens its users
# were given.
_TEMPLATES: dict[str, tuple[str, dict[str, str]]] = {}
_FOLDER = Path(tempfile.mkdtemp(prefix="switchboard-store-template-"))
atexit.register(shutil.rmtree, _FOLDER, True)


def copied(engine: Engine, prepare: Prepare) -> dict[str, str] | None:
    """Fill ``engine``'s store, still untouched, from the session's template (made
    with ``prepare`` the first time); None when it cannot be copied here, and the
    caller prepares it the slow way."""
    if engine.pool.checkedout() or engine.url.database is None:
        return None
    if engine.dialect.name == "sqlite":
        return _sqlite(engine, prepare)
    if engine.dialect.name == "postgresql":
        return _postgresql(engine, prepare)
    return None


def _sqlite(engine: Engine, prepare: Prepare) -> dict[str, str] | None:
    target = Path(str(engine.url.database))
    if target.exists() and target.stat().st_size:
        return None
    key = f"{_kind(prepare)}:sqlite"
    if key not in _TEMPLATES:
        url = f"sqlite:///{_FOLDER / f'template-{uuid.uuid4().hex[:12]}.db'}"
        _TEMPLATES[key] = (url, _made(url, prepare))
    url, tokens = _TEMPLATES[key]
    # SQLite's backup copies the store whole, whatever its WAL still holds.
    with closing(sqlite3.connect(str(open_engine(url).url.database))) as source, \
            closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    _copy_anchor(url, engine)
    return tokens


def _postgresql(engine: Engine, prepare: Prepare) -> dict[str, str] | None:
    with engine.connect() as connection:
        if connection.execute(text("SELECT count(*) FROM information_schema.tables "
                                   "WHERE table_schema = 'public'")).scalar():
            return None  # a test has already put something in it
    server = engine.url.set(database="postgres")
    key = f"{_kind(prepare)}:postgresql:{server.render_as_string(hide_password=True)}"
    admin = open_engine(server.render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    try:
        if key not in _TEMPLATES:
            name = f"switchboard_template_{uuid.uuid4().hex[:12]}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            url = server.set(database=name).render_as_string(hide_password=False)
            _TEMPLATES[key] = (url, _made(url, prepare))
            atexit.register(_drop, server.render_as_string(hide_password=False), name)
        url, tokens = _TEMPLATES[key]
        target, template = engine.url.database, open_engine(url).url.database
        # The store is still empty, but its engine may hold an idle connection to it,
        # which would stop the database being dropped.
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{target}"'))
            connection.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
    _copy_anchor(url, engine)
    return tokens


def migrated(engine: Engine) -> None:
    """``engine``'s store, still untouched, brought to the newest schema: on SQLite
    copied from the session's migrated template (a tenth of the time the migrations
    take), else migrated here. On PostgreSQL a copy means dropping the fresh database
    and making it again from the template, which forces a checkpoint and costs twice
    what the migrations do."""
    if engine.dialect.name != "sqlite" or copied(engine, _upgraded) is None:
        upgrade(engine)


def _upgraded(engine: Engine) -> dict[str, str]:
    upgrade(engine)
    return {}


def _kind(prepare: Prepare) -> str:
    return f"{prepare.__module__}.{prepare.__qualname__}"


def _made(url: str, prepare: Prepare) -> dict[str, str]:
    template = open_engine(url)
    try:
        tokens = prepare(template)
    finally:
        template.dispose()
    return tokens


def _copy_anchor(template_url: str, engine: Engine) -> None:
    source = default_anchor(open_engine(template_url).url).path
    if source.exists():
        target = default_anchor(engine.url).path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _drop(server_url: str, name: str) -> None:
    admin = open_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    except Exception:  # the private cluster may already be gone at exit
        pass
    finally:
        admin.dispose()
