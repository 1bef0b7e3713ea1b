"""The work queue over REST. Every signed-in user reaches these routes; what each may
see and do is decided per task by its queue's catalog entry (engine.security.task_access),
which engine.work_queue applies: a listing holds only the queues the caller may see,
a task's payload (it may hold PHI) goes only to those its queue lets read it, and only
those it names may act; notify and work tasks are completed, with a state when their
route row names states. This module only speaks HTTP. Every action, and every showing
of a payload, is audited there."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from admin.auth import require
from admin.queue_requests import answer_queue_errors, json_object, page_args, text_field
from admin.services import services
from engine.security.roles import Role

blueprint = Blueprint("tasks_api", __name__, url_prefix="/api/tasks")
answer_queue_errors(blueprint)
# Any role may be named by some queue: the work queue decides, per task.
ANY_ROLE = tuple(Role)


@blueprint.get("")
@require(*ANY_ROLE)
def list_tasks() -> Any:
    page, per_page = page_args()
    args = request.args
    listed = services().tasks.list(args.get("queue"), args.get("status"),
                                   args.get("assignee"), args.get("kind"), page, per_page,
                                   viewer=g.principal, sort=args.get("sort", "created"))
    return jsonify(listed.as_dict())


@blueprint.get("/<id:task_id>")
@require(*ANY_ROLE)
def show_task(task_id: int) -> Any:
    return jsonify(services().tasks.show(task_id, g.principal))


@blueprint.post("/<id:task_id>/assign")
@require(*ANY_ROLE)
def assign_task(task_id: int) -> Any:
    assignee = text_field(json_object(), "assignee") or ""
    return jsonify(services().tasks.assign(task_id, assignee, g.principal))


@blueprint.post("/<id:task_id>/unassign")
@require(*ANY_ROLE)
def unassign_task(task_id: int) -> Any:
    return jsonify(services().tasks.unassign(task_id, g.principal))


@blueprint.post("/<id:task_id>/approve")
@require(*ANY_ROLE)
def approve_task(task_id: int) -> Any:
    reason = text_field(json_object(), "reason", required=False)
    return jsonify(services().tasks.approve(task_id, g.principal, reason))


@blueprint.post("/<id:task_id>/reject")
@require(*ANY_ROLE)
def reject_task(task_id: int) -> Any:
    reason = text_field(json_object(), "reason") or ""
    return jsonify(services().tasks.reject(task_id, g.principal, reason))


@blueprint.post("/<id:task_id>/complete")
@require(*ANY_ROLE)
def complete_task(task_id: int) -> Any:
    body = json_object()
    return jsonify(services().tasks.complete(
        task_id, g.principal, text_field(body, "state", required=False),
        text_field(body, "reason", required=False)))
