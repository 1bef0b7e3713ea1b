"""The work queue over REST: clinicians, approvers and operators list tasks; only
clinicians and approvers see a task's payload (it may hold PHI) and decide a hold;
notify and work tasks are completed, with a state when their route row names states.
The rules live in engine.work_queue; this module
only speaks HTTP. Every action, and every showing of a payload, is audited there."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from admin.auth import require
from admin.queue_requests import answer_queue_errors, json_object, page_args, text_field
from admin.services import services
from engine.security.permissions import may, roles_for

blueprint = Blueprint("tasks_api", __name__, url_prefix="/api/tasks")
answer_queue_errors(blueprint)


@blueprint.get("")
@require(*roles_for("task.list"))
def list_tasks() -> Any:
    page, per_page = page_args()
    args = request.args
    listed = services().tasks.list(args.get("queue"), args.get("status"),
                                   args.get("assignee"), args.get("kind"), page, per_page,
                                   with_patient=may(g.principal.roles, "task.show"))
    return jsonify(listed.as_dict())


@blueprint.get("/<id:task_id>")
@require(*roles_for("task.show"))
def show_task(task_id: int) -> Any:
    return jsonify(services().tasks.show(task_id, g.principal.name))


@blueprint.post("/<id:task_id>/assign")
@require(*roles_for("task.assign"))
def assign_task(task_id: int) -> Any:
    assignee = text_field(json_object(), "assignee") or ""
    return jsonify(services().tasks.assign(task_id, assignee, g.principal.name))


@blueprint.post("/<id:task_id>/approve")
@require(*roles_for("task.approve"))
def approve_task(task_id: int) -> Any:
    reason = text_field(json_object(), "reason", required=False)
    return jsonify(services().tasks.approve(task_id, g.principal.name, reason))


@blueprint.post("/<id:task_id>/reject")
@require(*roles_for("task.reject"))
def reject_task(task_id: int) -> Any:
    reason = text_field(json_object(), "reason") or ""
    return jsonify(services().tasks.reject(task_id, g.principal.name, reason))


@blueprint.post("/<id:task_id>/complete")
@require(*roles_for("task.complete"))
def complete_task(task_id: int) -> Any:
    body = json_object()
    return jsonify(services().tasks.complete(
        task_id, g.principal.name, text_field(body, "state", required=False),
        text_field(body, "reason", required=False)))
