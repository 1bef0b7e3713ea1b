"""Switchboard's web process: REST API, HTTP ingest, health and metrics (and, with the
change-control issue, the admin GUI). ``create_app`` follows the Flask tutorial:
defaults, then an instance file, then ``SWITCHBOARD_*`` environment variables."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, make_response, request
from werkzeug.exceptions import HTTPException

from engine.store.database import default_url, instance_folder

access_log = logging.getLogger("switchboard.web")


def create_app(test_config: dict[str, Any] | None = None,
               fixed: dict[str, Any] | None = None) -> Flask:
    """The web app. ``test_config`` replaces the instance file and the environment;
    ``fixed`` is what the process serving the app decides (``switchboard serve``: its
    store, rule files and readiness), laid over the configuration."""
    app = _configured(test_config, fixed)
    from admin import (
        api,
        audit_api,
        exceptions_api,
        health,
        ingest,
        openapi,
        rules_api,
        store_ids,
        tasks_api,
    )

    # Before the blueprints: their routes name these converters.
    app.url_map.converters.update(store_ids.CONVERTERS)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(exceptions_api.blueprint)
    app.register_blueprint(tasks_api.blueprint)
    app.register_blueprint(rules_api.blueprint)
    app.register_blueprint(audit_api.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(ingest.blueprint)
    if app.config["CONSOLE"]:
        from admin import console

        console.mount(app)
    if not app.testing and app.config.get("PREVIEW_RUNNER", True):
        # Impact previews run in the background of the web process that serves their
        # API; with several web processes, each preview is claimed by one of them.
        from engine.impact_preview import PreviewRunner

        runner = PreviewRunner(app.extensions["switchboard"].engine)
        runner.start()
        app.extensions["switchboard.previews"] = runner
    return app


def create_health_app(test_config: dict[str, Any] | None = None,
                      fixed: dict[str, Any] | None = None) -> Flask:
    """Only /healthz, /readyz and /metrics: what the engine process serves."""
    app = _configured(test_config, fixed)
    from admin import health

    app.register_blueprint(health.blueprint)
    return app


def _configured(test_config: dict[str, Any] | None, fixed: dict[str, Any] | None) -> Flask:
    # No app-wide /static: the console serves its own assets under /console/static.
    app = Flask(__name__, static_folder=None,
                instance_path=str(instance_folder().resolve()))
    app.config.from_mapping(
        DATABASE_URL=os.environ.get("SWITCHBOARD_DATABASE_URL") or default_url(
            Path(app.instance_path)),
        CONFIG_ROOT=os.environ.get("SWITCHBOARD_CONFIG", str(Path.cwd())),
        PAGE_SIZE_MAX=200,
        # The web console (admin.console); the engine process serves none.
        CONSOLE=True,
        CONSOLE_IDLE_MINUTES=15,
        CONSOLE_ABSOLUTE_HOURS=12,
        CONSOLE_ADMINS_NEED_SECOND_FACTOR=False,
        # LDAP sign-in: a mapping of engine.security.ldap_directory settings; with it,
        # local passwords work only for LDAP_BREAK_GLASS_USER.
        LDAP=None,
        LDAP_BREAK_GLASS_USER=None,
        # The probes' own port (admin.probe_access); unset, the API's port serves them.
        HEALTH_PORT=None,
        # /metrics's bearer token, or a file holding it; unset, /metrics is open.
        PROBE_TOKEN=None,
        PROBE_TOKEN_FILE=None,
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("SWITCHBOARD")
        # Secrets as given: the prefixed loader would read a token "123" as a number.
        for key in ("PROBE_TOKEN", "PROBE_TOKEN_FILE"):
            if f"SWITCHBOARD_{key}" in os.environ:
                app.config[key] = os.environ[f"SWITCHBOARD_{key}"]
    else:
        app.config.from_mapping(test_config)
    app.config.from_mapping(fixed or {})

    from admin import probe_access
    from admin.services import Services

    # First: a bad probe setting stops the start before the store is opened.
    probe_access.install(app)
    app.extensions["switchboard"] = Services.open(app.config["DATABASE_URL"])
    app.register_error_handler(HTTPException, _json_error)
    app.before_request(_start_clock)
    app.after_request(_log_request)
    return app


def _console_request() -> bool:
    """A browser's request for a console page (the API answers JSON whatever is asked)."""
    from admin.console import COOKIELESS_BLUEPRINTS

    return current_app.config["CONSOLE"] and request.blueprint not in COOKIELESS_BLUEPRINTS \
        and not request.path.startswith(("/api/", "/ingest/"))


def _start_clock() -> None:
    g.request_started = time.perf_counter()


def _log_request(response: Response) -> Response:
    """One access line per request: the path without its query string, which can
    name a patient, and never a body."""
    started = g.get("request_started")
    access_log.info("request", extra={
        "method": request.method, "path": request.path, "status": response.status_code,
        "ms": None if started is None else round((time.perf_counter() - started) * 1e3, 1)})
    return response


def _json_error(error: HTTPException) -> Any:
    if _console_request():
        from admin.console.errors import error_page

        response = make_response(error_page(error))
    else:
        response = jsonify(error=error.name, reason=error.description)
        response.status_code = error.code or 500
    # What the error itself says in headers (Allow on a 405, Retry-After on a 503) is
    # part of the answer; only Werkzeug's own body's content type is not.
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    if error.code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="switchboard"'
    return response
