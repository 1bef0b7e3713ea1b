"""Change control over REST: rule-set versions, their review, gates, impact previews,
diffs and rollback. Every caller is authenticated here; what their role may do, and
from which state, engine.change_control decides (403 for a role or four-eyes, 409 for
a state, each with a hint saying what to do)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, make_response, request

from admin.auth import audit_denial, require
from admin.queue_requests import (
    answer_queue_errors,
    error_body,
    json_object,
    page_args,
    text_field,
)
from admin.services import draft_templates, services
from admin.store_ids import VERSIONS, body_number, query_number
from engine.change_control import GatesFailed
from engine.rules.draft_templates import TemplateError, check_values, instantiate
from engine.rules.lifecycle import READ_ROLES, Conflict, Forbidden

blueprint = Blueprint("rules_api", __name__, url_prefix="/api/rule-sets")
answer_queue_errors(blueprint)


def _answer(code: int) -> Any:
    def answer(error: Forbidden | Conflict) -> tuple[Response, int]:
        if code == 403 and g.get("principal") is not None:
            audit_denial(g.principal, request.endpoint or request.path)
        body = error_body(code, str(error), error.hint)
        if isinstance(error, GatesFailed):
            body["gates"] = [gate.as_dict() for gate in error.gates]
        return jsonify(body), code

    return answer


blueprint.register_error_handler(Forbidden, _answer(403))
blueprint.register_error_handler(Conflict, _answer(409))
# Any authenticated user may call; the role each action needs is checked inside.
anyone = require(*READ_ROLES)


@blueprint.get("/versions")
@anyone
def history() -> Any:
    page, per_page = page_args()
    return jsonify(services().versions.history(request.args.get("status"), page,
                                               per_page).as_dict())


@blueprint.post("/versions")
@anyone
def create_draft() -> Any:
    """``{"summary": "...", "parent": 3}`` copies a version (default: the published
    one); ``{"summary": "...", "content": {...}}`` imports content."""
    body = json_object()
    content = _content(body)
    if "values" in body and not isinstance(body["values"], dict):
        abort(400, description='"values" must be a JSON object: parameter -> value')
    created = services().versions.create_draft(
        g.principal, text_field(body, "summary") or "", body_number(body, "parent", VERSIONS),
        content, _template_change(body))
    return jsonify(created), 201


def _content(body: dict[str, Any]) -> dict[str, Any] | None:
    """The body's "content", shaped as `rules export` writes it; None when absent."""
    if "content" not in body:
        return None
    content = body["content"]
    if not (isinstance(content, dict) and isinstance(content.get("documents"), list)
            and all(isinstance(files, dict)
                    and all(isinstance(text, str) for text in files.values())
                    for files in (content.get(name, {}) for name in ("concept_maps", "files")))):
        abort(400, description='"content" must be a JSON object with a "documents" list '
              '(and "concept_maps" and "files" objects of texts), as `rules export` '
              "writes it")
    return content


@blueprint.get("/templates")
@anyone
def templates() -> Any:
    """The templates a draft can start from, with the values each asks for."""
    return jsonify(templates=[
        {"id": t.id, "name": t.name, "description": t.description, "to_fill_in": t.to_fill_in,
         "parameters": [vars(p) for p in t.parameters]} for t in draft_templates().values()])


def _template_change(body: dict[str, Any]) -> Any:
    """``{"template": "lab-result-routing", "values": {...}}`` fills the template in on
    the draft's parent; the values it refuses answer 400, each named."""
    name = text_field(body, "template", required=False)
    if name is None:
        return None
    template = draft_templates().get(name)
    if template is None:
        abort(400, description=f"No template {name!r}: see GET /api/rule-sets/templates")
    values = body.get("values") or {}
    if not isinstance(values, dict):
        abort(400, description='"values" must be a JSON object: parameter -> value')
    try:
        check_values(template, values)
    except TemplateError as error:
        abort(make_response(jsonify(error_body(400, str(error), error.hint,
                                               problems=error.problems)), 400))

    def change(content: dict[str, Any]) -> dict[str, Any]:
        try:
            return instantiate(template, values, content)
        except TemplateError as error:
            raise Conflict(str(error), hint=error.hint) from None
    return change


@blueprint.get("/versions/<version:version>")
@anyone
def show(version: int) -> Any:
    return jsonify(services().versions.show(version))


@blueprint.get("/versions/<version:version>/content")
@anyone
def content(version: int) -> Any:
    return jsonify(services().versions.content(version))


@blueprint.put("/versions/<version:version>/content")
@anyone
def edit(version: int) -> Any:
    body = json_object()
    content = _content(body)
    summary = text_field(body, "summary", required=False)
    if content is None and summary is None:
        abort(400, description='Send "content", "summary" or both')
    return jsonify(services().versions.edit(version, g.principal, content, summary))


@blueprint.put("/versions/<version:version>/documents")
@anyone
def put_document(version: int) -> Any:
    """``{"path": "rules/routes/x.yaml", "kind": "routes", "data": {...}}``."""
    body = json_object()
    path, kind = text_field(body, "path") or "", text_field(body, "kind") or ""
    if "data" not in body:
        abort(400, description='Send the document as "data"')
    return jsonify(services().versions.put_document(version, g.principal, path, kind,
                                                    body["data"]))


@blueprint.delete("/versions/<version:version>/documents")
@anyone
def delete_document(version: int) -> Any:
    path = request.args.get("path") or abort(400, description="Name the document: ?path=")
    return jsonify(services().versions.delete_document(version, g.principal, path))


@blueprint.post("/versions/<version:version>/submit")
@anyone
def submit(version: int) -> Any:
    return jsonify(services().versions.submit(version, g.principal))


@blueprint.post("/versions/<version:version>/approve")
@anyone
def approve(version: int) -> Any:
    reason = text_field(json_object(), "reason", required=False)
    return jsonify(services().versions.approve(version, g.principal, reason))


@blueprint.post("/versions/<version:version>/reject")
@anyone
def reject(version: int) -> Any:
    reason = text_field(json_object(), "reason") or ""
    return jsonify(services().versions.reject(version, g.principal, reason))


@blueprint.post("/versions/<version:version>/publish")
@anyone
def publish(version: int) -> Any:
    return jsonify(services().versions.publish(version, g.principal))


@blueprint.get("/versions/<version:version>/gates")
@anyone
def gates(version: int) -> Any:
    found = services().versions.gates(version)
    return jsonify(version=version, passed=all(gate["passed"] for gate in found), gates=found)


@blueprint.post("/versions/<version:version>/previews")
@anyone
def request_preview(version: int) -> Any:
    """``{"limit": 1000, "since": ISO, "until": ISO, "source": "ehr-adt-feed"}``, each
    optional. Answers 202 with the preview to poll."""
    selection = {k: v for k, v in json_object().items()
                 if k in ("limit", "since", "until", "source")}
    if None in selection.values():
        abort(400, description="Leave out what you do not select; null is not a selection")
    return jsonify(services().versions.request_preview(version, g.principal, selection)), 202


@blueprint.get("/previews/<id:preview_id>")
@anyone
def preview(preview_id: int) -> Any:
    return jsonify(services().versions.preview(preview_id))


@blueprint.post("/previews/<id:preview_id>/override")
@anyone
def override_preview(preview_id: int) -> Any:
    reason = text_field(json_object(), "reason") or ""
    return jsonify(services().versions.override_preview(preview_id, g.principal, reason))


@blueprint.post("/rollback")
@anyone
def rollback() -> Any:
    """``{"version": 2, "reason": "..."}``: publish version 2's rules again."""
    body = json_object()
    version = body_number(body, "version", VERSIONS)
    if version is None:
        abort(400, description='Name the earlier published version: {"version": N}')
    reason = text_field(body, "reason") or ""
    return jsonify(services().versions.rollback(version, g.principal, reason)), 201


@blueprint.get("/diff")
@anyone
def diff() -> Any:
    before, after = _query_version("from"), _query_version("to")
    return jsonify(services().versions.diff(before, after))


def _query_version(name: str) -> int:
    version = query_number(name, VERSIONS)
    if version is None:
        abort(400, description=f"Name two versions: ?from=N&to=M ({name} is missing)")
    return version
