"""The exception queue over REST: list, show and the signature groups for the readers
(operator, analyst, compliance), assign, resolve, retry and skip for operators,
reprocess for operators and analysts. The rules live in engine.exception_queue; this
module only speaks HTTP. Every action is audited there, named by the caller's
principal."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from admin.auth import require
from admin.queue_requests import answer_queue_errors, json_object, page_args, text_field
from admin.services import services
from engine.exception_queue import FILTER_NAMES
from engine.security.permissions import roles_for

blueprint = Blueprint("exceptions_api", __name__, url_prefix="/api/exceptions")
answer_queue_errors(blueprint)


@blueprint.get("")
@require(*roles_for("exception.read"))
def list_exceptions() -> Any:
    """Exception items, newest first; filter by status ("waiting": open or assigned),
    connection, error_class, owner_role, assignee or signature, sort by id, created_at,
    connection, error_class, status, assignee or escalate_at (- for descending)."""
    page, per_page = page_args()
    return jsonify(services().exceptions.list(_filters(), page, per_page,
                                              request.args.get("sort") or "-id").as_dict())


@blueprint.get("/signatures")
@require(*roles_for("exception.read"))
def list_signatures() -> Any:
    """Exception items grouped by signature (connection, error class and summary with
    numbers and ids masked), each with its count and first and last times; the same
    filters as the list; sort by count, last_at, first_at, connection or error_class
    (- for descending), largest group first. List a group's items with ?signature=."""
    page, per_page = page_args()
    return jsonify(services().exceptions.signatures(
        _filters(), page, per_page, request.args.get("sort") or "-count").as_dict())


def _filters() -> dict[str, str | None]:
    return {name: request.args.get(name) for name in FILTER_NAMES}


@blueprint.get("/<id:item_id>")
@require(*roles_for("exception.read"))
def show_exception(item_id: int) -> Any:
    return jsonify(services().exceptions.show(item_id))


@blueprint.post("/<id:item_id>/assign")
@require(*roles_for("exception.assign"))
def assign_exception(item_id: int) -> Any:
    assignee = text_field(json_object(), "assignee") or ""
    return jsonify(services().exceptions.assign(item_id, assignee, g.principal.name))


@blueprint.post("/<id:item_id>/resolve")
@require(*roles_for("exception.resolve"))
def resolve_exception(item_id: int) -> Any:
    reason = text_field(json_object(), "reason") or ""
    return jsonify(services().exceptions.resolve(item_id, reason, g.principal.name))


@blueprint.post("/<id:item_id>/retry")
@require(*roles_for("exception.retry"))
def retry_exception(item_id: int) -> Any:
    return jsonify(services().exceptions.retry(item_id, g.principal.name))


@blueprint.post("/<id:item_id>/reprocess")
@require(*roles_for("exception.reprocess"))
def reprocess_exception(item_id: int) -> Any:
    """``{"body": "..."}``: the edited delivery body, or for a message exception the
    edited message (HL7 v2 text, or FHIR JSON for a FHIR source)."""
    edited = text_field(json_object(), "body") or ""
    return jsonify(services().exceptions.reprocess(item_id, edited, g.principal.name))


@blueprint.post("/<id:item_id>/skip")
@require(*roles_for("exception.skip"))
def skip_exception(item_id: int) -> Any:
    """``{"reason": "..."}``: let what a dead letter or a failed message holds back go
    on without it."""
    reason = text_field(json_object(), "reason") or ""
    return jsonify(services().exceptions.skip(item_id, reason, g.principal.name))
