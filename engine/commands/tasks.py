"""``switchboard tasks list|show|assign|approve|reject|complete``: the work queue from
the command line, with the REST API's rules (engine.work_queue) and roles
(engine.security.permissions), acting as the ``--as`` user."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine

from engine.commands.queue_cli import (
    OK,
    Handler,
    print_done,
    print_item,
    print_page,
    run_queue_command,
)
from engine.security.permissions import may
from engine.security.users import UserStore
from engine.work_queue import WorkQueue

PROG = "switchboard tasks"
COLUMNS = ("id", "queue", "kind", "mode", "status", "assignee", "due_at", "control_id",
           "message_id")
WITH_PATIENT = (*COLUMNS[:-1], "patient", COLUMNS[-1])
SUMMARY = ("id", "queue", "kind", "mode", "status", "assignee", "due_at", "created_at",
           "completed_at", "decided_by", "row_id", "message_id", "control_id")


def tasks_command(args: argparse.Namespace) -> int:
    action, handler = _ACTIONS[args.action]
    return run_queue_command(PROG, args, action, handler)


def _list(engine: Engine, actor: str, args: argparse.Namespace) -> int:
    principal = UserStore(engine).principal(actor)
    # The patient is the payload's: shown to those who may see payloads.
    with_patient = principal is not None and may(principal.roles, "task.show")
    page = WorkQueue(engine).list(args.queue, args.status, args.assignee, args.kind,
                                  args.page, args.per_page, with_patient=with_patient)
    print_page(page, WITH_PATIENT if with_patient else COLUMNS, args.json, "no tasks match")
    return OK


def _show(engine: Engine, actor: str, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).show(args.id, actor)
    if args.json:
        print_item(view, True)
        return OK
    print(f"for: {view['for'] or '-'}")
    for key in SUMMARY:
        print(f"{key}: {'-' if view[key] is None else view[key]}")
    for held in view["holds"]:
        print(f"holds: delivery {held['delivery_id']} to {held['destination']} ({held['status']})")
    print("payload:")
    for line in _outline(view["payload"], 1):
        print(line)
    return OK


def _outline(value: Any, depth: int) -> Iterator[str]:
    """``value`` one scalar per line, nested by indentation, lists item by item."""
    indent = "  " * depth
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                yield f"{indent}{key}:"
                yield from _outline(item, depth + 1)
            else:
                yield f"{indent}{key}: {_scalar(item)}"
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                yield f"{indent}-"
                yield from _outline(item, depth + 1)
            else:
                yield f"{indent}- {_scalar(item)}"
    else:
        yield f"{indent}{_scalar(value)}"


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return "none"
    return str(value)


def _assign(engine: Engine, actor: str, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).assign(args.id, args.assignee, actor)
    print_done(f"task {args.id} assigned to {args.assignee}", view, args.json)
    return OK


def _approve(engine: Engine, actor: str, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).approve(args.id, actor, args.reason)
    print_done(f"task {args.id} approved: its held deliveries are released", view,
               args.json)
    return OK


def _reject(engine: Engine, actor: str, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).reject(args.id, actor, args.reason)
    print_done(f"task {args.id} rejected: its held deliveries are cancelled", view,
               args.json)
    return OK


def _complete(engine: Engine, actor: str, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).complete(args.id, actor, args.state, args.reason)
    state = f" as {args.state}" if args.state else ""
    print_done(f"task {args.id} completed{state}", view, args.json)
    return OK


_ACTIONS: dict[str, tuple[str, Handler]] = {
    "list": ("task.list", _list),
    "show": ("task.show", _show),
    "assign": ("task.assign", _assign),
    "approve": ("task.approve", _approve),
    "reject": ("task.reject", _reject),
    "complete": ("task.complete", _complete),
}
