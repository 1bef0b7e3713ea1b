"""The REST API: messages with their stage timeline, routing and exceptions, and
reprocessing one under the rules published now; the exception queue and the work
queue have blueprints of their own (exceptions_api, tasks_api). Responses carry
identifiers and statuses, never message content."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, jsonify, request

from admin.auth import require
from admin.queue_requests import answer_queue_errors, json_object, page_args, text_field
from admin.services import services
from engine.security.permissions import roles_for

blueprint = Blueprint("api", __name__, url_prefix="/api")
answer_queue_errors(blueprint)


@blueprint.get("/messages")
@require(*roles_for("message.read"))
def list_messages() -> Any:
    """Search the message log: every parameter given must match; paged on the server.

    Parameters are those of engine.message_log.PARAMETERS (the console's searches and
    saved searches take the same); an unknown one is refused with the list of known
    ones. ``total_exact`` false means at least ``total`` messages match."""
    query = {name: value for name, value in request.args.items()
             if name not in ("page", "per_page")}
    # The console's forms send empty fields; a caller of the API leaves them out, so
    # that which parameters go together (path and value) is plain.
    empty = sorted(name for name, value in query.items() if not value)
    if empty:
        abort(400, description=f"{', '.join(empty)}: leave out what you do not search by")
    page, per_page = page_args()
    return jsonify(services().messages.list(query, page, per_page).as_dict())


@blueprint.get("/messages/<message_id>")
@require(*roles_for("message.read"))
def show_message(message_id: str) -> Any:
    return jsonify(services().messages.show(message_id))



@blueprint.post("/messages/<message_id>/reprocess")
@require(*roles_for("message.reprocess"))
def reprocess_message(message_id: str) -> Any:
    """Route the message again under the rules published now: a failed one goes back to
    the pipeline; a routed one gets deliveries only to destinations it has none to.
    ``{"reason": "..."}`` is kept on the message's timeline, not in the audit trail."""
    reason = text_field(json_object(), "reason", required=False)
    return jsonify(services().reroute.reprocess(message_id, g.principal.name,
                                                reason).as_dict())
