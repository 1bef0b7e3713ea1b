"""/healthz (alive), /readyz (can this process make progress?) and /metrics
(Prometheus text). They carry no PHI and no identifiers: counts and ages by connection,
queue and worker (names from the configuration), check names and reasons. /healthz and
/readyz are open, as load balancers must reach them; /metrics needs the probe token when
one is configured; all three can be served on a port of their own (admin.probe_access).

/readyz answers 503 with its reasons when the process itself cannot make progress: the
store is unreachable, a listener is down, or a stage is stalled while work waits. A
destination that is down is not the engine failing: it shows in /metrics and the
exception queue, not here. It also says which rule-set version the engine runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text

from admin.probe_access import require_probe_token
from admin.services import services
from engine.backlog import BacklogCollector
from engine.metrics import REGISTRY
from engine.security.security_events import SecurityEventCollector

blueprint = Blueprint("health", __name__)
# Extra readiness checks a process registers: name -> callable giving why it is not
# ready, or None when it is.
READINESS = "SWITCHBOARD_READINESS_CHECKS"
# Callables giving the rule-set version this process's engine runs (None while its
# parts disagree), and the version each part runs.
RUNNING_VERSION = "SWITCHBOARD_RUNNING_VERSION"
RUNNING_VERSIONS = "SWITCHBOARD_RUNNING_VERSIONS"


@blueprint.get("/healthz")
def healthz() -> Any:
    return jsonify(status="alive")


@blueprint.get("/readyz")
def readyz() -> Any:
    problems: dict[str, str | None] = {
        "database": _database_problem(),
        # This process's own journal, for HTTP ingest.
        "http_ingest": services().ingestor.journal.writer_problem()}
    extra: dict[str, Callable[[], str | None]] = current_app.config.get(READINESS, {})
    for name, check in extra.items():
        problems[name] = check()
    ready = not any(problems.values())
    version: Callable[[], int | None] | None = current_app.config.get(RUNNING_VERSION)
    versions: Callable[[], dict[str, int]] | None = current_app.config.get(RUNNING_VERSIONS)
    response = jsonify(
        status="ready" if ready else "not ready",
        checks={name: problem is None for name, problem in problems.items()},
        reasons=[f"{name}: {problem}" for name, problem in problems.items() if problem],
        rule_set_version=version() if version else None,
        rule_set_versions=versions() if versions else {})
    response.status_code = 200 if ready else 503
    return response


@blueprint.get("/metrics")
def metrics() -> Response:
    require_probe_token()
    # content_type, not mimetype: the latter adds a second charset to one that has it.
    return Response(generate_latest(REGISTRY) + generate_latest(_backlog()),
                    content_type=CONTENT_TYPE_LATEST)


def _backlog() -> CollectorRegistry:
    """The backlog gauges, read from the store for this scrape."""
    registry = CollectorRegistry(auto_describe=False)
    try:
        connections = list(services().rule_sets.current().rule_set.connections)
    except Exception:  # the store is down: /readyz says so; the gauges wait
        return registry
    registry.register(BacklogCollector(services().reads, connections))
    registry.register(SecurityEventCollector(services().reads))
    return registry


def _database_problem() -> str | None:
    try:
        with services().reads.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure means not ready
        current_app.logger.warning("readiness: database unreachable")
        return f"the store is unreachable ({type(error).__name__})"
    return None
