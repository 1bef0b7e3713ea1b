"""The audit trail over REST, for compliance and admins: its events, filtered, sorted
and paged, and a check of its chain (the same check as ``switchboard audit verify``,
recorded in the trail as ``audit.verify``). The console's audit log reads through the
same service (engine.security.audit_trail)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from admin.auth import require
from admin.queue_requests import answer_queue_errors, page_args
from admin.services import services
from admin.store_ids import IDS, query_number
from engine.security.audit_trail import FILTERS, verdict_view
from engine.security.permissions import roles_for

blueprint = Blueprint("audit_api", __name__, url_prefix="/api/audit")
answer_queue_errors(blueprint)


@blueprint.get("")
@require(*roles_for("audit.read"))
def events() -> Any:
    """Audit events, newest first unless ``sort`` says otherwise (at, actor, action or
    object, "-" before it for descending); filter by id, actor, action, target_type,
    target_id, event (a security event: content_view, access_denied, ...), since and
    until (ISO 8601 times with an offset; until is exclusive)."""
    filters = {name: request.args.get(name) for name in (*FILTERS, "event", "since", "until")}
    # An event number the store can hold, as the document states it (empty: none).
    filters["id"] = request.args.get("id") and str(query_number("id", IDS))
    page, per_page = page_args()
    return jsonify(services().audit.events(filters, request.args.get("sort") or "-at",
                                           page, per_page).as_dict())


@blueprint.get("/verify")
@require(*roles_for("audit.verify"))
def verify() -> Any:
    """Check the chain and its anchor; names the first edited, inserted or deleted
    event, or a truncation. The check and its verdict are recorded in the trail."""
    return jsonify(verdict_view(services().audit.verify(g.principal.name)))
