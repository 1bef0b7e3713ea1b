"""The audit trail over REST, for compliance and admins: its events, newest first and
filtered, and a check of its chain (the same check as ``switchboard audit verify``).
Events name things by id and carry no PHI, so reading them is not itself audited."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from admin.auth import require
from admin.queue_requests import paged
from admin.services import services
from engine.queues import iso
from engine.security.audit import AuditLog
from engine.security.roles import Role
from engine.store.models import AuditEvent

blueprint = Blueprint("audit_api", __name__, url_prefix="/api/audit")
FILTERS = {"actor": AuditEvent.actor, "action": AuditEvent.action,
           "target_type": AuditEvent.target_type, "target_id": AuditEvent.target_id}


@blueprint.get("")
@require(Role.COMPLIANCE)
def events() -> Any:
    """Audit events, newest first; filter by actor, action, target_type, target_id."""
    query = select(AuditEvent)
    for name, column in FILTERS.items():
        value = request.args.get(name)
        if value:
            query = query.where(column == value)
    return jsonify(paged(query.order_by(AuditEvent.id.desc()), _event))


@blueprint.get("/verify")
@require(Role.COMPLIANCE)
def verify() -> Any:
    """Check the chain and its anchor; names the first edited, inserted or deleted
    event, or a truncation."""
    verdict = AuditLog(services().engine).check()
    return jsonify(ok=verdict.ok, checked=verdict.checked, anchor_head=verdict.anchor_head,
                   event_id=verdict.event_id, kind=verdict.kind, problem=verdict.problem,
                   counts=dict(verdict.counts))


def _event(row: AuditEvent) -> dict[str, Any]:
    return {"id": row.id, "at": iso(row.at), "actor": row.actor, "action": row.action,
            "target_type": row.target_type, "target_id": row.target_id,
            "detail": row.detail, "before_hash": row.before_hash,
            "after_hash": row.after_hash, "reason": row.reason, "hash": row.hash,
            "prev_hash": row.prev_hash}
