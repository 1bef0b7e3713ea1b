"""/healthz (alive), /readyz (database reachable, listeners up) and /metrics
(Prometheus). Unauthenticated by design: they carry no PHI and load balancers and
Prometheus must reach them; the API is not here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text

from admin.services import services
from engine.metrics import REGISTRY

blueprint = Blueprint("health", __name__)
# Extra readiness checks a process registers (name -> callable returning True when up).
READINESS = "SWITCHBOARD_READINESS_CHECKS"


@blueprint.get("/healthz")
def healthz() -> Any:
    return jsonify(status="alive")


@blueprint.get("/readyz")
def readyz() -> Any:
    checks: dict[str, bool] = {"database": _database_up()}
    extra: dict[str, Callable[[], bool]] = current_app.config.get(READINESS, {})
    for name, check in extra.items():
        checks[name] = bool(check())
    ready = all(checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    return response


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST)


def _database_up() -> bool:
    try:
        with services().reads.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any failure means not ready; the reason goes to the log
        current_app.logger.warning("readiness: database unreachable")
        return False
    return True
