"""The REST API: messages with their stage timeline, routing and exceptions. Read-only;
the exception queue and the work queue have blueprints of their own (exceptions_api,
tasks_api). Responses carry identifiers and statuses, never message content."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from admin.auth import require
from admin.queue_requests import answer_queue_errors, page_args
from admin.services import services
from engine.message_log import FILTERS
from engine.security.permissions import roles_for

blueprint = Blueprint("api", __name__, url_prefix="/api")
answer_queue_errors(blueprint)


@blueprint.get("/messages")
@require(*roles_for("message.read"))
def list_messages() -> Any:
    filters = {name: request.args.get(name)
               for name in (*FILTERS, "patient", "patient_authority", "since", "until")}
    page, per_page = page_args()
    return jsonify(services().messages.list(filters, page, per_page).as_dict())


@blueprint.get("/messages/<message_id>")
@require(*roles_for("message.read"))
def show_message(message_id: str) -> Any:
    return jsonify(services().messages.show(message_id))

