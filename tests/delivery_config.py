"""A small configuration for delivery tests: the shipped mappings and schemas, the
inbound ``ehr-adt-feed`` listener, and one route that sends every message to the
HTTP destination ``test-sink``, under an exception policy fast enough to watch; or the
shipped configuration with two of its destinations moved to 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SINK = "test-sink"
FAST_POLICY = {"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "1s"}}


def update(control_id: str, patient: str, event: str = "A08") -> bytes:
    """A small ADT^A08 (patient update; ``event`` A04 makes it a registration) with
    MSH-10 ``control_id`` for MRN ``patient``."""
    return (f"MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500||ADT^{event}^ADT_A01|"
            f"{control_id}|P|2.5.1\rEVN|{event}|20261124101500\r"
            f"PID|1||{patient}^^^RIVERSIDE^MR||DOE^JANE||19800101|F\rPV1|1|O\r").encode()


HTTP_FEED = "http-feed"
HTTP_FEED_TOKEN_ENV = "SWITCHBOARD_TEST_HTTP_FEED_TOKEN"
FHIR_FEED = "fhir-feed"
FHIR_FEED_TOKEN_ENV = "SWITCHBOARD_TEST_FHIR_FEED_TOKEN"


def delivery_config(folder: Path, sink_url: str, *, policy: dict[str, Any] | None = None,
                    mllp_port: int | None = None, mllp_sink: int | None = None,
                    hold: bool = False, http_feed: bool = False,
                    fhir_feed: bool = False, ordering: str | None = None) -> Path:
    """Write the configuration into ``folder`` and return it; ``sink_url`` receives
    every message (POST, canonical JSON), or with ``mllp_sink`` an MLLP destination on
    that port (HL7 v2); ``mllp_port`` moves the listener; with ``hold`` only ADT
    updates (A08) and registrations (A04) go out, and an update waits for a nurse's
    review task in the ``review`` queue (clinicians act on it, operators see it) while
    a registration goes out at once; with
    ``http_feed`` HL7 v2 may also be posted to /ingest/http-feed (token in
    HTTP_FEED_TOKEN_ENV); with ``fhir_feed`` FHIR R4 may be posted to /ingest/fhir-feed
    (token in FHIR_FEED_TOKEN_ENV), and the sink's scope takes appointments too;
    ``ordering`` is the test sink's (strict when not given)."""
    rules = folder / "rules"
    shutil.copytree(ROOT / "rules" / "mappings", rules / "mappings")
    shutil.copytree(ROOT / "rules" / "schema", rules / "schema")
    rows: list[dict[str, Any]] = [{"id": "all-to-test-sink", "to": [SINK]}]
    if hold:
        rows = [{"id": "updates-after-review", "match": {"type": "ADT", "event": "A08"},
                 "to": [SINK], "checkpoint": {"mode": "hold", "queue": "review",
                                              "kind": "review", "due": "1h"}},
                {"id": "registrations-at-once", "match": {"type": "ADT", "event": "A04"},
                 "to": [SINK]}]
    _write(rules / "routes" / "everything.yaml", {
        "id": "everything", "description": "Every message to the test sink.", "rows": rows})
    rules_policy = {**FAST_POLICY, **(policy or {})}
    _write(rules / "policies" / "test.yaml", {"id": "test-delivery", "policies": [
        {"connections": ["*"], "error_classes": ["*"], **rules_policy,
         "dead_letter": {"owner_role": "operator"},
         "escalation": {"after": "1h", "notify_role": "admin"}}]})
    connections = folder / "catalog" / "connections"
    feed = yaml.safe_load((ROOT / "catalog" / "connections" / "ehr-adt-feed.yaml").read_text())
    if mllp_port is not None:
        feed["endpoint"]["port"] = mllp_port
    _write(connections / "ehr-adt-feed.yaml", feed)
    if http_feed:
        _write(connections / f"{HTTP_FEED}.yaml", {
            **_owned(HTTP_FEED, "HL7 v2 posted over HTTP."), "direction": "inbound",
            "transport": "http", "format": "hl7v2",
            "endpoint": {"url": f"https://switchboard.example/ingest/{HTTP_FEED}",
                         "method": "POST", "auth_secret_env": HTTP_FEED_TOKEN_ENV}})
    if fhir_feed:
        _write(connections / f"{FHIR_FEED}.yaml", {
            **_owned(FHIR_FEED, "FHIR R4 posted over HTTP."), "direction": "inbound",
            "transport": "http", "format": "fhir-r4",
            "endpoint": {"url": f"https://switchboard.example/ingest/{FHIR_FEED}",
                         "method": "POST", "auth_secret_env": FHIR_FEED_TOKEN_ENV}})
    if hold:
        _write(connections / "review.yaml", {
            **_owned("review", "Updates a nurse reviews before they go."),
            "direction": "outbound", "transport": "task-queue",
            "endpoint": {"queue": "review"}, "format": "canonical-json",
            "data_scope": ["message", "patient"],
            "task_access": {"see": ["operator"], "payload": ["clinician"],
                            "act": ["clinician"]}})
    endpoint: dict[str, Any] = {"url": sink_url, "method": "POST"}
    transport, form = "http", "canonical-json"
    if mllp_sink is not None:
        endpoint = {"host": "127.0.0.1", "port": mllp_sink, "ack_timeout": "5s"}
        transport, form = "mllp", "hl7v2"
    _write(connections / f"{SINK}.yaml", {
        **_owned(SINK, "Records what it receives."),
        "direction": "outbound", "transport": transport, "endpoint": endpoint,
        "format": form,
        "data_scope": ["message", "patient", "encounter", "orders", "results",
                       *(["appointments"] if fhir_feed else [])],
        **({} if ordering is None else {"ordering": ordering}),
    })
    return folder


def _owned(connection: str, description: str) -> dict[str, Any]:
    """A catalog entry's names, owners, classification and recovery procedure."""
    return {
        "id": connection, "name": connection.replace("-", " ").capitalize(),
        "description": description,
        "business_owner": {"name": "Test Owner", "email": "owner@example.org"},
        "technical_owner": {"name": "Test Tech", "email": "tech@example.org",
                            "pager": "test-pager"},
        "classification": "phi", "recovery_procedure": "Start the test sink again.",
    }


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def example_config(folder: Path, analytics_url: str, lab_port: int) -> Path:
    """Write the shipped configuration (rules/ and catalog/) into ``folder`` and return
    it, with two destinations moved to 127.0.0.1: ``analytics-warehouse`` POSTs its
    canonical JSON to ``analytics_url``, and ``lab-system`` speaks MLLP to ``lab_port``
    (a port nobody listens on: the lab is down)."""
    shutil.copytree(ROOT / "rules", folder / "rules")
    shutil.copytree(ROOT / "catalog", folder / "catalog")
    connections = folder / "catalog" / "connections"
    analytics = yaml.safe_load((connections / "analytics-warehouse.yaml").read_text())
    analytics.update(transport="http", endpoint={"url": analytics_url, "method": "POST"})
    _write(connections / "analytics-warehouse.yaml", analytics)
    lab = yaml.safe_load((connections / "lab-system.yaml").read_text())
    lab["endpoint"].update(host="127.0.0.1", port=lab_port)
    _write(connections / "lab-system.yaml", lab)
    return folder
