"""The probes (/healthz, /readyz, /metrics) on a port of their own, apart from the API,
/metrics behind the probe token when one is configured, and served as Prometheus text
with one charset (issue 17). ``switchboard serve`` runs on real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from admin import create_health_app
from engine.errors import SwitchboardError
from engine.service import Settings, prepare_store, run
from tests.delivery_config import delivery_config
from tests.in_process_serve import serving
from tests.ports import free_port
from tests.serve_process import ServeProcess
from tests.waiting import wait_until

PROBES = ("/healthz", "/readyz", "/metrics")
TOKEN = "probe-7f3a9c1e5b2d4f60"


def get(port: int, path: str, token: str | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of GET (or ``method``) ``path``, whatever the status."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers,
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:  # closed now: a leaked socket fails whichever test collects it
            return error.code, dict(error.headers), error.read()


def config(tmp_path: Path) -> tuple[Path, str]:
    # The sink's port is closed: deliveries retry, as with a destination that is down.
    return (delivery_config(tmp_path / "config", "http://127.0.0.1:9/events"),
            f"sqlite:///{tmp_path / 'switchboard.db'}")


def test_the_probes_answer_on_their_own_port_and_the_api_port_no_longer_does(tmp_path):
    with serving(*config(tmp_path), health_port=0) as serve:
        assert serve.health != serve.web
        assert serve.send("APART-1", "MRN-1") == "AA"
        assert get(serve.health, "/healthz")[2] == b'{"status":"alive"}\n'
        wait_until(lambda: serve.readiness()[0] == 200, what="serve to be ready")
        status, _, body = get(serve.health, "/metrics")
        assert status == 200 and b"switchboard_received_total" in body
        for path in PROBES:
            assert get(serve.web, path)[0] == 404, path
        # The probe port is no way into the API or the console.
        for path in ("/api/openapi.json", "/api/messages", "/", "/console/static/console.css"):
            assert get(serve.health, path)[0] == 404, path
        status, _, body = get(serve.web, "/api/openapi.json")
        assert status == 200
        assert not set(PROBES) & set(json.loads(body)["paths"])


def test_metrics_is_prometheus_text_with_one_charset(tmp_path):
    with serving(*config(tmp_path)) as serve:
        status, headers, _ = get(serve.web, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert headers["Content-Type"].count("charset") == 1


def test_metrics_needs_the_probe_token_when_one_is_configured(tmp_path, monkeypatch):
    token_file = tmp_path / "probe-token"
    token_file.write_text(TOKEN + "\n")  # as a secret mounted from a file often ends
    monkeypatch.setenv("SWITCHBOARD_PROBE_TOKEN_FILE", str(token_file))
    with serving(*config(tmp_path), health_port=0) as serve:
        status, headers, body = get(serve.health, "/metrics")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN.encode() not in body and b"switchboard_" not in body
        for wrong in ("probe", TOKEN[:-1], TOKEN + "0", TOKEN.upper()):
            status, _, body = get(serve.health, "/metrics", wrong)
            assert status == 401 and b"switchboard_" not in body, wrong
            assert json.loads(body)["reason"] == "The probe token is wrong"
        status, _, body = get(serve.health, "/metrics", TOKEN)
        assert status == 200 and b"switchboard_received_total" in body
        # Load balancers' health checks send no secret: these stay open.
        assert get(serve.health, "/healthz")[0] == 200
        assert get(serve.health, "/readyz")[0] in (200, 503)


def test_the_document_says_when_metrics_needs_the_probe_token(tmp_path, monkeypatch):
    folder, url = config(tmp_path)
    with serving(folder, url) as serve:
        document = json.loads(get(serve.web, "/api/openapi.json")[2])
    validate(document)
    metrics = document["paths"]["/metrics"]["get"]
    assert metrics["security"] == [{}, {"probeToken": []}]  # optional: ignored when unset
    assert list(metrics["responses"]["200"]["content"]) == ["text/plain"]
    assert "401" not in metrics["responses"]
    assert set(document["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}
    monkeypatch.setenv("SWITCHBOARD_PROBE_TOKEN", TOKEN)
    with serving(folder, url) as serve:
        document = json.loads(get(serve.web, "/api/openapi.json")[2])
    validate(document)
    metrics = document["paths"]["/metrics"]["get"]
    assert metrics["security"] == [{"probeToken": []}]
    assert "401" in metrics["responses"]
    assert document["components"]["securitySchemes"]["probeToken"]["scheme"] == "bearer"


@pytest.mark.parametrize(("settings", "message"), [
    ({"PROBE_TOKEN": TOKEN, "PROBE_TOKEN_FILE": "/run/secrets/probe"},
     "set SWITCHBOARD_PROBE_TOKEN or SWITCHBOARD_PROBE_TOKEN_FILE, not both"),
    ({"PROBE_TOKEN_FILE": "/nonexistent/probe-token"},
     "SWITCHBOARD_PROBE_TOKEN_FILE /nonexistent/probe-token cannot be read "
     "(FileNotFoundError)"),
    ({"PROBE_TOKEN": "two words"}, "the probe token must be 1 to 1024 visible ASCII"),
    ({"PROBE_TOKEN": "  "}, "the probe token must be 1 to 1024 visible ASCII"),
    ({"HEALTH_PORT": "eighty"}, "SWITCHBOARD_HEALTH_PORT must be a port number, not 'eighty'"),
])
def test_a_bad_probe_setting_stops_the_start_with_the_reason(tmp_path, settings, message):
    with pytest.raises(SwitchboardError) as raised:
        create_health_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}", **settings})
    assert str(raised.value).startswith(message)


def test_the_health_port_must_differ_from_the_web_port(tmp_path):
    folder, url = config(tmp_path)
    with pytest.raises(SwitchboardError, match="the health port must differ from the web "
                                               r"port \(8080\)"):
        asyncio.run(run(Settings(url, folder, web_port=8080, health_port=8080),
                        engine_part=False, web_part=True))


def test_switchboard_serve_puts_the_probes_on_the_health_port_it_is_given(tmp_path,
                                                                           monkeypatch):
    """The command line as an operator runs it: --health-port, the token from the
    environment."""
    monkeypatch.setenv("SWITCHBOARD_PROBE_TOKEN", TOKEN)
    folder, url = config(tmp_path)
    serve = ServeProcess(folder, url, tmp_path / "serve.log", "--pipeline-workers", "0",
                         probes_apart=True)
    serve.start()  # ready: /readyz answered 200 on the health port
    try:
        assert get(serve.web_port, "/readyz")[0] == 404
        assert get(serve.health_port, "/metrics")[0] == 401
        status, headers, _ = get(serve.health_port, "/metrics", TOKEN)
        assert status == 200 and headers["Content-Type"] == CONTENT_TYPE_LATEST
        assert get(serve.web_port, "/api/openapi.json")[0] == 200
    finally:
        assert serve.stop() == 0


def test_under_gunicorn_one_app_bound_twice_keeps_the_probes_apart(tmp_path):
    """The Procfile's web: gunicorn binds the API and the health port, and
    SWITCHBOARD_HEALTH_PORT (gunicorn's --env) tells the app which is which, by the port
    of the listening socket:
    a Host header naming the health port does not move a request there."""
    folder, url = config(tmp_path)
    prepare_store(Settings(url, folder)).dispose()
    web, health = free_port(), free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(gunicorn), "--bind", f"127.0.0.1:{web}", "--bind", f"127.0.0.1:{health}",
             "--env", f"SWITCHBOARD_HEALTH_PORT={health}", "--workers", "1",
             "admin:create_app()"], stdout=output, stderr=subprocess.STDOUT,
            cwd=tmp_path, start_new_session=True,
            env={**os.environ, "SWITCHBOARD_DATABASE_URL": url,
                 "SWITCHBOARD_CONFIG": str(folder),
                 "SWITCHBOARD_INSTANCE": str(tmp_path / "instance"),
                 "SWITCHBOARD_PROBE_TOKEN": TOKEN,
                 "SWITCHBOARD_PREVIEW_RUNNER": "false"})
    try:
        def ready() -> bool:
            assert process.poll() is None, f"gunicorn exited; see {log}"
            try:
                return get(health, "/readyz")[0] == 200
            except urllib.error.URLError:
                return False

        wait_until(ready, what=f"gunicorn to be ready (see {log})", every=0.1)
        assert [get(web, path)[0] for path in PROBES] == [404, 404, 404]
        assert get(health, "/metrics")[0] == 401
        assert get(health, "/metrics", TOKEN)[0] == 200
        assert get(health, "/api/openapi.json")[0] == 404
        assert get(web, "/api/openapi.json")[0] == 200
        spoofed = urllib.request.Request(f"http://127.0.0.1:{web}/healthz",
                                         headers={"Host": f"127.0.0.1:{health}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(spoofed, timeout=30)
        refused.value.close()
        assert refused.value.code == 404
    finally:
        process.terminate()
        process.wait(30)
