"""The OpenAPI 3.1 document the web app serves at ``/api/openapi.json``.

Its paths are read from the app's own URL map, so a route cannot be added without
appearing here; what each operation is for comes from its view's docstring, and the
request bodies and query parameters from the tables below. Every operation needs a
bearer token except the health probes and this document, which name no data; /metrics
takes the probe token when one is configured. Probes served on a port of their own are
not in the API's document."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

from admin import probe_access
from admin.store_ids import CONVERTERS, VERSIONS, Bounds
from engine import message_log
from engine.exception_queue import GROUP_SORTS, SORTS

blueprint = Blueprint("openapi", __name__)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/api/openapi.json"})
# HTTP ingest is called by systems, with their connection's own token, not a user's.
SOURCE_PATHS = frozenset({"/ingest/{connection_id}"})
_PARAMETER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


def _whole(bounds: Bounds) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": bounds.largest}


_TEXT, _INT, _VERSION = {"type": "string"}, {"type": "integer"}, _whole(VERSIONS)
# Request bodies by endpoint (blueprint.view): what the view reads from the JSON body.
BODIES: dict[str, dict[str, Any]] = {
    "rules_api.create_draft": _object({"summary": _TEXT, "parent": _VERSION,
                                       "content": {"$ref": "#/components/schemas/Content"}},
                                      ("summary",)),
    "rules_api.edit": _object({"summary": _TEXT,
                               "content": {"$ref": "#/components/schemas/Content"}}),
    "rules_api.put_document": _object({"path": _TEXT, "kind": _TEXT, "data": {}},
                                      ("path", "kind", "data")),
    "rules_api.approve": _object({"reason": _TEXT}),
    "rules_api.reject": _object({"reason": _TEXT}, ("reason",)),
    "rules_api.request_preview": _object({"limit": _INT, "since": _TEXT, "until": _TEXT,
                                          "source": _TEXT}),
    "rules_api.override_preview": _object({"reason": _TEXT}, ("reason",)),
    "rules_api.rollback": _object({"version": _VERSION, "reason": _TEXT}, ("version", "reason")),
    "api.reprocess_message": _object({"reason": _TEXT}),
    "exceptions_api.assign_exception": _object({"assignee": _TEXT}, ("assignee",)),
    "exceptions_api.resolve_exception": _object({"reason": _TEXT}, ("reason",)),
    "exceptions_api.skip_exception": _object({"reason": _TEXT}, ("reason",)),
    "exceptions_api.reprocess_exception": _object({"body": _TEXT}, ("body",)),
    "tasks_api.assign_task": _object({"assignee": _TEXT}, ("assignee",)),
    "tasks_api.approve_task": _object({"reason": _TEXT}),
    "tasks_api.reject_task": _object({"reason": _TEXT}, ("reason",)),
    "tasks_api.complete_task": _object({"state": _TEXT, "reason": _TEXT}),
}
_PAGING = {"page": "the page, from 1", "per_page": "items per page (at most 200)"}
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "sort": {"type": "string", "enum": list(message_log.SORTS)},
    "since": {"type": "string", "format": "date-time"},
    "until": {"type": "string", "format": "date-time"},
    "page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1},
}
_QUERY_TEXT = {"in": "query", "required": False, "schema": _TEXT}
_EXCEPTION_FILTERS = [
    {"name": "status", **_QUERY_TEXT, "description": "open, assigned, resolved, retried, "
     "reprocessed or skipped; waiting for open or assigned"},
    *({"name": name, **_QUERY_TEXT} for name in ("connection", "error_class", "owner_role",
                                                  "assignee")),
    {"name": "signature", **_QUERY_TEXT,
     "description": "a group's key, from /api/exceptions/signatures"},
    {"name": "page", "in": "query", "required": False, "schema": {"type": "integer",
                                                                  "minimum": 1}},
    {"name": "per_page", "in": "query", "required": False, "schema": {"type": "integer",
                                                                      "minimum": 1}},
]


def _sort(names: tuple[str, ...], default: str) -> dict[str, Any]:
    return {"name": "sort", "in": "query", "required": False, "schema": {
        "type": "string", "enum": [f"{sign}{name}" for name in names for sign in ("", "-")],
        "default": default}}


# Query parameters by endpoint, where a listing takes filters and a sort.
QUERIES: dict[str, list[dict[str, Any]]] = {
    "api.list_messages": [
        {"name": name, "in": "query", "required": False, "description": text,
         "schema": _QUERY_SCHEMAS.get(name, _TEXT)}
        for name, text in {**message_log.PARAMETERS, **_PAGING}.items()],
    "exceptions_api.list_exceptions": [*_EXCEPTION_FILTERS, _sort(tuple(SORTS), "-id")],
    "exceptions_api.list_signatures": [*_EXCEPTION_FILTERS, _sort(GROUP_SORTS, "-count")],
}
_READINESS = {"type": "object", "required": ["status", "checks", "reasons"], "properties": {
    "status": {"enum": ["ready", "not ready"]},
    "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
    "reasons": {"type": "array", "items": _TEXT},
    "rule_set_version": {"type": ["integer", "null"]},
    "rule_set_versions": {"type": "object", "additionalProperties": _INT}}}
# What each probe answers: its own shapes, not the API's.
PROBES: dict[str, dict[str, Any]] = {
    "/healthz": {"200": {"description": "The process is alive", "content": {
        "application/json": {"schema": _object({"status": {"const": "alive"}},
                                               ("status",))}}}},
    "/readyz": {"200": {"description": "The process can make progress", "content": {
        "application/json": {"schema": _READINESS}}},
                "503": {"description": "It cannot; the reasons say why", "content": {
                    "application/json": {"schema": _READINESS}}}},
    "/metrics": {"200": {"description": "Prometheus text exposition", "content": {
        "text/plain": {"schema": _TEXT}}}},
}
_ERRORS = {
    "400": "The request is malformed; the reason says which part",
    "401": "No token, or an unknown, revoked or disabled one",
    "403": "The caller's role, or four-eyes, does not allow this; the hint says whom to ask",
    "404": "No such item",
    "409": "The item's state does not allow this; the hint says what to do instead",
}


@blueprint.get("/api/openapi.json")
def document() -> Any:
    return jsonify(openapi_document(current_app))


def openapi_document(app: Flask) -> dict[str, Any]:
    from admin.console import COOKIELESS_BLUEPRINTS

    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        # The console's pages are HTML for people, not operations of the API.
        if rule.endpoint.split(".")[0] not in COOKIELESS_BLUEPRINTS:
            continue
        path = _PARAMETER.sub(lambda m: "{" + m["name"] + "}", rule.rule)
        if path in probe_access.PROBE_PATHS and probe_access.probes_apart(app):
            continue  # answered on the health port only
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(app, rule, path)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Switchboard", "version": "1",
                 "description": "Switchboard's REST API: messages, the exception queue, "
                                "the work queue, change control of rule-set versions, "
                                "HTTP ingest, health and metrics."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a user's API token from `switchboard users add`"},
                "sourceToken": {"type": "http", "scheme": "bearer",
                                "description": "the inbound connection's token, from the "
                                               "environment variable its catalog entry "
                                               "names (endpoint.auth_secret_env)"},
                "probeToken": {"type": "http", "scheme": "bearer",
                               "description": "the probe token, for /metrics, when "
                                              "SWITCHBOARD_PROBE_TOKEN or "
                                              "SWITCHBOARD_PROBE_TOKEN_FILE is set"}},
            "schemas": {
                "Error": _object({"error": _TEXT, "reason": _TEXT, "hint": _TEXT},
                                 ("error", "reason")),
                "Content": _object({"documents": {"type": "array"},
                                    "concept_maps": {"type": "object"},
                                    "files": {"type": "object"}}, ("documents",)),
            },
        },
    }


def _operation(app: Flask, rule: Any, path: str) -> dict[str, Any]:
    view = app.view_functions[rule.endpoint]
    doc = (view.__doc__ or "").strip()
    operation: dict[str, Any] = {
        "operationId": f"{rule.endpoint}.{sorted(rule.methods - {'HEAD', 'OPTIONS'})[0]}"
                       .replace(".", "_").lower(),
        "summary": doc.splitlines()[0] if doc else rule.endpoint.split(".")[-1]
        .replace("_", " "),
        "tags": [rule.endpoint.split(".")[0]],
        "parameters": [*(_parameter(m) for m in _PARAMETER.finditer(rule.rule)),
                       *QUERIES.get(rule.endpoint, [])],
        "responses": {"200": {"description": "Done", "content": {
            "application/json": {"schema": {"type": "object"}}}}},
    }
    if doc and len(doc.splitlines()) > 1:
        operation["description"] = doc
    if rule.endpoint in BODIES:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": BODIES[rule.endpoint]}}}
    if path in SOURCE_PATHS:
        operation["requestBody"] = {"required": True, "content": {
            "application/hl7-v2": {"schema": _TEXT},
            "application/fhir+json": {"schema": {"type": "object"}}}}
    if path not in OPEN_PATHS:
        operation["security"] = [{"sourceToken" if path in SOURCE_PATHS else "bearer": []}]
        for code, text in _ERRORS.items():
            operation["responses"][code] = {"description": text, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    else:
        operation["security"] = []
    if path in PROBES:
        operation["responses"] = dict(PROBES[path])
    if path == "/metrics":
        _probe_token(app, operation)
    return operation


def _probe_token(app: Flask, operation: dict[str, Any]) -> None:
    """Configured, the probe token is needed; unset, one sent is ignored: optional."""
    if not probe_access.token_configured(app):
        operation["security"] = [{}, {"probeToken": []}]
        return
    operation["security"] = [{"probeToken": []}]
    operation["responses"]["401"] = {"description": "No probe token, or a wrong one",
                                     "content": {"application/json": {
                                         "schema": {"$ref": "#/components/schemas/Error"}}}}


def _parameter(match: re.Match[str]) -> dict[str, Any]:
    converter = CONVERTERS.get(match["kind"] or "")
    schema = _whole(converter.bounds) if converter else _TEXT
    return {"name": match["name"], "in": "path", "required": True, "schema": schema}
