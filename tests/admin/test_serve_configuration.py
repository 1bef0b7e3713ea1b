"""The web app ``switchboard serve`` starts is configured as gunicorn's is: from the
instance file and ``SWITCHBOARD_*`` variables (LDAP sign-in, the console's timeouts),
with only the store and the rule files fixed by serve itself."""

from __future__ import annotations

import json

from engine.service import Settings, start_web
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from tests.queue_rows import ROOT

LDAP = {"url": "ldap://127.0.0.1:1", "user_dn_template": "uid={username},dc=example,dc=org",
        "group_mode": "memberOf", "group_roles": {"switchboard-admins": "admin"}}


def test_serve_s_web_app_reads_switchboard_settings_from_the_environment(tmp_path,
                                                                         monkeypatch):
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("SWITCHBOARD_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("SWITCHBOARD_LDAP", json.dumps(LDAP))
    monkeypatch.setenv("SWITCHBOARD_LDAP_BREAK_GLASS_USER", "adam")
    monkeypatch.setenv("SWITCHBOARD_CONSOLE_IDLE_MINUTES", "5")
    monkeypatch.setenv("SWITCHBOARD_PREVIEW_RUNNER", "false")
    # Serve's own store wins over one named in the environment.
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", "sqlite:///elsewhere.db")
    server = start_web(Settings(url, ROOT), 0, None)
    try:
        config = server.app.config  # type: ignore[attr-defined]
        assert config["LDAP"] == LDAP
        assert config["LDAP_BREAK_GLASS_USER"] == "adam"
        assert config["CONSOLE_IDLE_MINUTES"] == 5
        assert config["DATABASE_URL"] == url and config["CONFIG_ROOT"] == str(ROOT)
        sign_in = server.app.extensions["switchboard.sign_in"]  # type: ignore[attr-defined]
        assert sign_in.directory is not None and sign_in.break_glass == "adam"
    finally:
        server.shutdown()
        server.server_close()
        server.app.extensions["switchboard"].close()  # type: ignore[attr-defined]
