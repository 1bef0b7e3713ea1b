"""The web app over Flask's test client, on a store with one user per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from admin import create_app
from tests.queue_rows import ROOT, prepared


@dataclass
class Api:
    client: FlaskClient
    tokens: dict[str, str]

    def call(self, method: str, path: str, as_user: str | None = None,
             json: Any = None, data: bytes | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.tokens[as_user]}"} if as_user else {}
        response = self.client.open(path, method=method, headers=headers, json=json,
                                    data=data)
        return response.status_code, response.get_json(silent=True) or {}


@pytest.fixture
def api(engine) -> Iterator[Api]:
    tokens = prepared(engine)
    url = engine.url.render_as_string(hide_password=False)
    app = create_app({"DATABASE_URL": url, "CONFIG_ROOT": str(ROOT), "TESTING": True})
    try:
        yield Api(app.test_client(), tokens)
    finally:
        app.extensions["switchboard"].close()
