"""The OpenAPI 3.1 document the web app serves at ``/api/openapi.json``.

Its paths are read from the app's own URL map, so a route cannot be added without
appearing here; what each operation is for comes from its view's docstring, and the
request bodies, query parameters, answers, examples and links from the tables below.
Every operation needs a bearer token except the health probes and this document, which
name no data; /metrics takes the probe token when one is configured. Probes served on a
port of their own are not in the API's document."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

from admin import probe_access
from admin.ingest_outcome import MESSAGE_ID_EXTENSION
from admin.store_ids import CONVERTERS, IDS, VERSIONS, Bounds
from engine import message_log
from engine.exception_queue import GROUP_SORTS, SORTS
from engine.exception_signature import KEY_LENGTH
from engine.impact_preview import MAX_LIMIT
from engine.indexed_paths import IndexedPaths
from engine.rules.draft_templates import KINDS
from engine.rules.lifecycle import STATES
from engine.rules.source import CONCEPT_MAPS, LAYOUT
from engine.security import audit_trail
from engine.security.security_events import EVENTS
from engine.store.limits import MAX_ID
from engine.work_queue import SORTS as TASK_SORTS

blueprint = Blueprint("openapi", __name__)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/api/openapi.json"})
# HTTP ingest is called by systems, with their connection's own token, not a user's.
SOURCE_PATHS = frozenset({"/ingest/{connection_id}"})
_PARAMETER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")
_REF = "#/components/schemas/"


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


def _whole(bounds: Bounds) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": bounds.largest}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF + name}


# ---- request bodies ----------------------------------------------------------------


def _document_path(folder: str) -> dict[str, Any]:
    return {"type": "string", "pattern": "^" + re.escape(folder) + r"/[A-Za-z0-9_.-]+\.yaml$"}


def _document(folder: str, kind: str) -> dict[str, Any]:
    """A rule document of ``kind`` in its folder; its data is checked against the kind's
    schema by the gates, not when it is saved."""
    return _object({"path": _document_path(folder), "kind": {"const": kind},
                    "data": {"not": {"type": "null"}}}, ("path", "kind", "data"))


# What admin.queue_requests.text_field takes: a string with something besides spaces.
_SAID = {"type": "string", "pattern": r"\S"}
_TEXT, _VERSION = {"type": "string"}, _whole(VERSIONS)
_SOME = {"type": "string", "minLength": 1}
# An ISO 8601 time with a UTC offset (engine.queues.aware_moment).
_MOMENT = {"type": "string", "format": "date-time"}
# Request bodies by endpoint (blueprint.view): what the view reads from the JSON body,
# and an example of it. A body whose members are all optional may be left out.
_BODIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "rules_api.create_draft": (
        _object({"summary": _SAID, "parent": _VERSION, "content": _ref("Content"),
                 "template": _SAID, "values": {"type": "object"}}, ("summary",)),
        {"summary": "Send abnormal potassium results to the nurse review queue"}),
    "rules_api.edit": (
        {**_object({"summary": _SAID, "content": _ref("Content")}),
         "minProperties": 1, "anyOf": [{"required": ["summary"]}, {"required": ["content"]}]},
        {"summary": "Route potassium results, and say why"}),
    "rules_api.put_document": (
        {**_object({"path": _TEXT, "kind": _TEXT, "data": {}}, ("path", "kind", "data")),
         "oneOf": [_document(folder, kind) for folder, kind in LAYOUT]},
        {"path": "rules/routes/analytics.yaml", "kind": "routes",
         "data": {"description": "Every event, de-identified, for the quality team"}}),
    "rules_api.approve": (_object({"reason": _SAID}), {"reason": "Checked the preview"}),
    "rules_api.reject": (_object({"reason": _SAID}, ("reason",)),
                         {"reason": "The potassium threshold is wrong"}),
    "rules_api.request_preview": (
        {"description": "each optional; since (inclusive) must be before until (exclusive)"} |
        _object({"limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                 "since": _MOMENT, "until": _MOMENT,
                 "source": {"type": "string", "pattern": r"\S", "maxLength": 64}}),
        {"limit": 200, "source": "ehr-adt-feed"}),
    "rules_api.override_preview": (_object({"reason": _SAID}, ("reason",)),
                                   {"reason": "No traffic on this route yet"}),
    "rules_api.rollback": (_object({"version": _VERSION, "reason": _SAID},
                                   ("version", "reason")),
                           {"version": 1, "reason": "The new routes dropped lab results"}),
    "api.reprocess_message": (_object({"reason": _SAID}),
                              {"reason": "The clinic's catalog entry is fixed"}),
    "exceptions_api.assign_exception": (_object({"assignee": _SAID}, ("assignee",)),
                                        {"assignee": "olive"}),
    "exceptions_api.resolve_exception": (_object({"reason": _SAID}, ("reason",)),
                                         {"reason": "Sent to the clinic by fax"}),
    "exceptions_api.skip_exception": (_object({"reason": _SAID}, ("reason",)),
                                      {"reason": "The clinic has it already"}),
    "exceptions_api.reprocess_exception": (
        _object({"body": _SAID}, ("body",)),
        {"body": "MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261207083000||ADT^A08|MSG1|P|2.5"}),
    "tasks_api.assign_task": (_object({"assignee": _SAID}, ("assignee",)),
                              {"assignee": "cora"}),
    "tasks_api.approve_task": (_object({"reason": _SAID}), {"reason": "Within range"}),
    "tasks_api.reject_task": (_object({"reason": _SAID}, ("reason",)),
                              {"reason": "Repeat the test first"}),
    "tasks_api.complete_task": (_object({"state": _SAID, "reason": _SAID}),
                                {"reason": "Called the patient"}),
}
BODIES = {view: schema for view, (schema, _example) in _BODIES.items()}
BODY_EXAMPLES = {view: example for view, (_schema, example) in _BODIES.items()}


# ---- query parameters --------------------------------------------------------------


def _query(name: str, schema: dict[str, Any], description: str | None = None,
           *, required: bool = False, example: Any = None) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required,
                                 "schema": schema}
    if description:
        parameter["description"] = description
    if example is not None:
        parameter["example"] = example
    return parameter


def _or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """A filter the views read as absent when it is empty (``?status=``)."""
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], ""]}
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def _sorts(names: Any, default: str) -> list[str]:
    return [f"{sign}{name}" for name in names for sign in ("", "-")] or [default]


def _paging(app: Flask) -> list[dict[str, Any]]:
    per_page_max = app.config["PAGE_SIZE_MAX"]
    # Any per_page is taken (capped at PAGE_SIZE_MAX); a page beyond the offset the store
    # can hold at the largest page is refused.
    return [_query("page", {"type": "integer", "minimum": 1,
                            "maximum": MAX_ID // per_page_max}, "the page, from 1", example=1),
            _query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                   f"items per page (at most {per_page_max} are given)", example=20)]


def _exception_filters() -> list[dict[str, Any]]:
    return [
        _query("status", _TEXT, "open, assigned, resolved, retried, reprocessed or skipped; "
               "waiting for open or assigned", example="waiting"),
        *(_query(name, _TEXT) for name in ("connection", "error_class", "owner_role",
                                           "assignee")),
        _query("signature", _or_empty({"type": "string", "pattern": f"^[0-9a-f]{{{KEY_LENGTH}}}$"}),
               "a group's key, from /api/exceptions/signatures"),
    ]


def _draft(app: Flask) -> dict[str, Any]:
    """A new draft's body: with a template (admin.services.draft_templates), the values
    that template asks for, each in the form its kind takes."""
    from admin.services import draft_templates

    schema = BODIES["rules_api.create_draft"]
    templates = draft_templates()
    given = [{"if": {"required": ["template"], "properties": {"template": {"const": name}}},
              "then": {"required": ["values"], "properties": {"values": _object(
                  {p.id: {"type": "string", "pattern": KINDS[p.kind][0].pattern,
                          "not": {"pattern": r"^\s*$"}} for p in template.parameters},
                  tuple(p.id for p in template.parameters))}}}
             for name, template in sorted(templates.items())]
    properties = {**schema["properties"], "template": {"type": "string",
                                                       "enum": sorted(templates)}}
    return {**schema, "properties": properties, "allOf": given} if given else schema


def _queries(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """Query parameters by endpoint: each listing's filters, sort and paging."""
    paging = _paging(app)
    schemas: dict[str, dict[str, Any]] = {
        "sort": {"type": "string", "enum": list(message_log.SORTS)},
        "delivery_status": {"type": "string", "enum": list(message_log.DELIVERY_STATUSES)},
        "path": {"type": "string", "enum": list(IndexedPaths.configured().names)},
        "since": _MOMENT, "until": _MOMENT}
    return {
        # One object, its members the search's parameters (style form, exploded: each
        # member is a parameter of the query string), as only an object can say which
        # go together.
        "api.list_messages": [{
            "name": "search", "in": "query", "required": False, "style": "form",
            "explode": True, "description": "the search; every member given must match",
            "schema": {"type": "object", "additionalProperties": False,
                       "properties": {name: {**schemas.get(name, _SOME), "description": text}
                                      for name, text in message_log.PARAMETERS.items()},
                       "dependentRequired": {"patient_authority": ["patient"],
                                             "path": ["value"], "value": ["path"]}},
            "example": {"status": "routed", "sort": "-received_at"}}, *paging],
        "exceptions_api.list_exceptions": [
            *_exception_filters(),
            _query("sort", _or_empty({"type": "string", "enum": _sorts(SORTS, "-id"),
                                      "default": "-id"})), *paging],
        "exceptions_api.list_signatures": [
            *_exception_filters(),
            _query("sort", _or_empty({"type": "string", "enum": _sorts(GROUP_SORTS, "-count"),
                                      "default": "-count"})), *paging],
        "tasks_api.list_tasks": [
            *(_query(name, _TEXT) for name in ("queue", "status", "assignee", "kind")),
            _query("sort", {"type": "string", "enum": _sorts(TASK_SORTS, "created"),
                            "default": "created"}), *paging],
        "rules_api.history": [
            _query("status", _or_empty({"type": "string", "enum": list(STATES)}),
                   example="draft"), *paging],
        "rules_api.delete_document": [
            _query("path", _SAID, "the document's path in the version", required=True,
                   example="rules/routes/analytics.yaml")],
        "rules_api.diff": [
            _query("from", _VERSION, "the version before", required=True, example=1),
            _query("to", _VERSION, "the version after", required=True, example=2)],
        "audit_api.events": [
            *(_query(name, _TEXT) for name in audit_trail.FILTERS),
            _query("id", _or_empty(_whole(IDS)), "one event's number"),
            _query("event", _or_empty({"type": "string", "enum": list(EVENTS)}),
                   "a security event"),
            _query("since", _or_empty(_MOMENT)), _query("until", _or_empty(_MOMENT)),
            _query("sort", _or_empty({"type": "string", "enum": _sorts(audit_trail.SORTS, "-at"),
                                      "default": "-at"})), *paging],
    }


# ---- answers -----------------------------------------------------------------------

# The status a success is answered with, where it is not 200.
SUCCESS = {"rules_api.create_draft": "201", "rules_api.rollback": "201",
           "rules_api.request_preview": "202", "ingest.ingest": "202"}
# Listings answer a page (engine.queues.Page).
PAGED = frozenset({"api.list_messages", "exceptions_api.list_exceptions",
                   "exceptions_api.list_signatures", "tasks_api.list_tasks",
                   "rules_api.history", "audit_api.events"})
_READINESS = {"type": "object", "required": ["status", "checks", "reasons"], "properties": {
    "status": {"enum": ["ready", "not ready"]},
    "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
    "reasons": {"type": "array", "items": _TEXT},
    "rule_set_version": {"type": ["integer", "null"]},
    "rule_set_versions": {"type": "object", "additionalProperties": {"type": "integer"}}}}
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
    "409": "The item's state, or what the store holds that the request names (a user to "
           "assign, a task's states), does not allow this; the hint says what to do instead",
    "413": "The message is larger than ingest takes",
    "415": "The body's media type is not the one the connection's catalog entry names",
    "422": "The body is JSON, but not a FHIR R4 resource Switchboard reads, or one that "
           "does not validate; journaled as rejected",
    "503": "The store cannot take it now; send it again",
}
# Errors by endpoint beyond those every authenticated operation may answer.
_MORE_ERRORS = {"ingest.ingest": ("400", "413", "415", "422", "503"),
                # They name a version in the body or the query string.
                "rules_api.create_draft": ("404",), "rules_api.rollback": ("404",),
                "rules_api.diff": ("404",)}
# Where one operation's answer names what another takes: OpenAPI links, which the
# stateful tests follow (a created draft's number, a listed item's id).
_VERSION_LINKS = {"version": "$response.body#/version"}
LINKS: dict[str, dict[str, tuple[str, dict[str, str]]]] = {
    "rules_api.create_draft": {
        name: (f"rules_api.{name}", _VERSION_LINKS) for name in (
            "show", "content", "edit", "put_document", "delete_document", "submit",
            "gates", "request_preview", "approve", "reject", "publish")},
    "rules_api.request_preview": {
        "preview": ("rules_api.preview", {"preview_id": "$response.body#/id"}),
        "override_preview": ("rules_api.override_preview",
                             {"preview_id": "$response.body#/id"})},
    "exceptions_api.list_exceptions": {
        name: (f"exceptions_api.{name}", {"item_id": "$response.body#/items/0/id"})
        for name in ("show_exception", "assign_exception", "resolve_exception",
                     "retry_exception", "reprocess_exception", "skip_exception")},
    "tasks_api.list_tasks": {
        name: (f"tasks_api.{name}", {"task_id": "$response.body#/items/0/id"})
        for name in ("show_task", "assign_task", "unassign_task", "approve_task",
                     "reject_task", "complete_task")},
    "api.list_messages": {
        name: (f"api.{name}", {"message_id": "$response.body#/items/0/message_id"})
        for name in ("show_message", "reprocess_message")},
}
# Path parameters' examples: items a working store holds.
_PATH_EXAMPLES = {"version": 1, "item_id": 1, "task_id": 1, "preview_id": 1,
                  "message_id": "0b72e2de-7fc6-4474-bd6d-a5ad60ba8b80",
                  "connection_id": "partner-referrals"}


# A version's other files: concept-map sheets, and rule tests' messages (base64).
_CONCEPT_MAP = "^" + re.escape(CONCEPT_MAPS) + r"/[A-Za-z0-9_.-]+\.csv$"
_MESSAGE_FILE = r"^rules/tests/messages/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\.hl7$"
_BASE64 = {"type": "string", "contentEncoding": "base64",
           "pattern": r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"}


@blueprint.get("/api/openapi.json")
def document() -> Any:
    return jsonify(openapi_document(current_app))


def openapi_document(app: Flask) -> dict[str, Any]:
    from admin.console import COOKIELESS_BLUEPRINTS

    queries = _queries(app)
    # The console's pages are HTML for people, not operations of the API.
    rules = sorted((rule for rule in app.url_map.iter_rules()
                    if rule.endpoint.split(".")[0] in COOKIELESS_BLUEPRINTS),
                   key=lambda r: r.rule)
    ids = {rule.endpoint: _operation_id(rule) for rule in rules}
    paths: dict[str, dict[str, Any]] = {}
    for rule in rules:
        path = _PARAMETER.sub(lambda m: "{" + m["name"] + "}", rule.rule)
        if path in probe_access.PROBE_PATHS and probe_access.probes_apart(app):
            continue  # answered on the health port only
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(app, rule, path, queries,
                                                                   ids)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Switchboard", "version": "1",
                 "description": "Switchboard's REST API: messages, the exception queue, "
                                "the work queue, change control of rule-set versions, "
                                "HTTP ingest, health and metrics. Errors answer JSON "
                                "(the Error schema); a hint is given only where there "
                                "is something to say. 400 means the request is not "
                                "what this document describes; 409, that it is, but "
                                "what is stored does not allow it."},
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
                "OperationOutcome": {
                    "type": "object", "required": ["resourceType", "issue"],
                    "description": "FHIR R4 OperationOutcome: one error issue whose "
                                   "diagnostics say why, expression where, details.text "
                                   "what to do; the journaled message's id in the "
                                   "extension " + MESSAGE_ID_EXTENSION,
                    "properties": {
                        "resourceType": {"const": "OperationOutcome"},
                        "issue": {"type": "array", "minItems": 1, "items": _object({
                            "severity": _TEXT, "code": _TEXT, "diagnostics": _TEXT,
                            "expression": {"type": "array", "items": _TEXT},
                            "details": {"type": "object"}}, ("severity", "code"))},
                        "extension": {"type": "array", "items": {"type": "object"}}}},
                "Page": _object({"items": {"type": "array", "items": {"type": "object"}},
                                 "page": {"type": "integer", "minimum": 1},
                                 "per_page": {"type": "integer", "minimum": 1},
                                 "total": {"type": "integer", "minimum": 0},
                                 "total_exact": {"type": "boolean"}},
                                ("items", "page", "per_page", "total")),
                "Content": _object({
                    "documents": {"type": "array", "description": "each path once",
                                  "items": {"oneOf": [
                        _document(folder, kind)
                        for folder, kind in LAYOUT]}},
                    "concept_maps": {"type": "object", "additionalProperties": _TEXT,
                                     "propertyNames": {"pattern": _CONCEPT_MAP}},
                    "files": {"type": "object", "additionalProperties": _BASE64,
                              "propertyNames": {"pattern": _MESSAGE_FILE}}},
                    ("documents",)),
            },
        },
    }


def _operation_id(rule: Any) -> str:
    method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
    return f"{rule.endpoint}.{method}".replace(".", "_").lower()


def _operation(app: Flask, rule: Any, path: str, queries: dict[str, list[dict[str, Any]]],
               ids: dict[str, str]) -> dict[str, Any]:
    view = app.view_functions[rule.endpoint]
    doc = (view.__doc__ or "").strip()
    method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
    in_path = [_parameter(m) for m in _PARAMETER.finditer(rule.rule)]
    in_query = queries.get(rule.endpoint, [])
    operation: dict[str, Any] = {
        "operationId": ids[rule.endpoint],
        "summary": doc.splitlines()[0] if doc else rule.endpoint.split(".")[-1]
        .replace("_", " "),
        "tags": [rule.endpoint.split(".")[0]],
        "parameters": [*in_path, *in_query],
        "responses": {SUCCESS.get(rule.endpoint, "200"): _success(rule.endpoint, path, ids)},
    }
    if doc and len(doc.splitlines()) > 1:
        operation["description"] = doc
    if rule.endpoint in BODIES:
        schema = _draft(app) if rule.endpoint == "rules_api.create_draft" \
            else BODIES[rule.endpoint]
        example = BODY_EXAMPLES[rule.endpoint]
        operation["requestBody"] = {
            "required": bool(schema.get("required")) or "oneOf" in schema or "anyOf" in schema,
            "content": {"application/json": {"schema": schema, "example": example}}}
    if path in SOURCE_PATHS:
        operation["requestBody"] = {"required": True, "content": {
            "application/hl7-v2": {"schema": {"type": "string", "pattern": "^MSH"},
                                   "example": "MSH|^~\\&|PARTNER|CLINIC|SB|RIVERSIDE|"
                                              "20261207083000||REF^I12|REF1|P|2.5\r"},
            "application/fhir+json": {"schema": {"type": "object"}}}}
    if path in OPEN_PATHS:
        operation["security"] = []
        if path in PROBES:
            operation["responses"] = dict(PROBES[path])
        if path == "/metrics":
            _probe_token(app, operation)
        return operation
    operation["security"] = [{"sourceToken" if path in SOURCE_PATHS else "bearer": []}]
    codes = ["401"] if path in SOURCE_PATHS else ["401", "403"]
    if in_path and path not in SOURCE_PATHS:
        codes.append("404")
    if in_query or "requestBody" in operation:
        codes.append("400")
    if method != "GET" and path not in SOURCE_PATHS:
        codes.append("409")
    for code in sorted({*codes, *_MORE_ERRORS.get(rule.endpoint, ())}):
        operation["responses"][code] = {"description": _ERRORS[code], "content": {
            "application/json": {"schema": _ref("Error")}}}
        if path in SOURCE_PATHS and code in _FHIR_REJECTIONS:
            # A FHIR source's rejection is journaled and answered in FHIR (422 only so).
            content = operation["responses"][code]["content"]
            if code == "422":
                content.clear()
            content["application/fhir+json"] = {"schema": _ref("OperationOutcome")}
    return operation


# What HTTP ingest answers a FHIR source with an OperationOutcome (admin.ingest_outcome).
_FHIR_REJECTIONS = frozenset({"400", "415", "422"})


def _success(endpoint: str, path: str, ids: dict[str, str]) -> dict[str, Any]:
    schema = _ref("Page") if endpoint in PAGED else {"type": "object"}
    answer: dict[str, Any] = {"description": "Done", "content": {
        "application/json": {"schema": schema}}}
    links = LINKS.get(endpoint)
    if links:
        answer["links"] = {name: {"operationId": ids[target], "parameters": parameters}
                           for name, (target, parameters) in links.items()}
    return answer


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
    parameter = {"name": match["name"], "in": "path", "required": True, "schema": schema}
    if match["name"] in _PATH_EXAMPLES:
        parameter["example"] = _PATH_EXAMPLES[match["name"]]
    return parameter
