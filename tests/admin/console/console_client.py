"""The console over Flask's test client, on a store with one user per role
(tests.queue_rows.PEOPLE). ``console.as_(name)`` is a browser signed in as that user:
its session is started the way a password sign-in starts one, so screen tests do not
pay for argon2 on every test; the sign-in tests go through the password form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from admin import create_app
from admin.console.access import SESSION_KEY
from engine.security.console_sessions import SIGNED_IN
from engine.security.users import roles_of
from engine.store.models import User
from tests.queue_rows import ROOT, prepared

_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass
class Browser:
    """One user's browser: a cookie jar, and the CSRF token its pages carry."""

    client: FlaskClient
    name: str | None
    _token: str | None = field(default=None, repr=False)

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        found = _CSRF.search(response.get_data(as_text=True))
        if found:
            self._token = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True,
             **kwargs: Any) -> Any:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf_token())
        return self.client.post(path, data=form, **kwargs)

    def csrf_token(self) -> str:
        if self._token is None:
            self.get("/account/" if self.name else "/sign-in/")
        assert self._token is not None, "no page gave a CSRF token"
        return self._token

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return str(response.get_data(as_text=True))


@dataclass
class Console:
    app: Flask
    engine: Engine
    tokens: dict[str, str]

    def anonymous(self) -> Browser:
        return Browser(self.app.test_client(), None)

    def as_(self, name: str) -> Browser:
        """A browser signed in as ``name`` (one of tests.queue_rows.PEOPLE)."""
        with Session(self.engine) as session:
            user = session.scalar(select(User).where(User.name == name))
            assert user is not None, name
            roles = roles_of(user.role, user.extra_roles)
            user_id = user.id
        sign_in = self.app.extensions["switchboard.sign_in"]
        token = sign_in.console_sessions.start(user_id, roles, "local", SIGNED_IN, "127.0.0.1")
        client = self.app.test_client()
        with client.session_transaction() as cookie:
            cookie[SESSION_KEY] = token
        return Browser(client, name)


def console_app(engine: Engine, **config: Any) -> Flask:
    url = engine.url.render_as_string(hide_password=False)
    return create_app({"DATABASE_URL": url, "CONFIG_ROOT": str(ROOT), "TESTING": True,
                       "SECRET_KEY": "test secret key, not a real one", **config})


@pytest.fixture
def console(engine) -> Iterator[Console]:
    tokens = prepared(engine)
    app = console_app(engine)
    try:
        yield Console(app, engine, tokens)
    finally:
        app.extensions["switchboard"].close()
