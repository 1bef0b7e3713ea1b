"""``switchboard tasks list|show|assign|unassign|approve|reject|complete``: the work queue from
the command line, acting as the ``--as`` user, with the REST API's rules and the same
per-queue roles (engine.work_queue, engine.security.task_access)."""

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
from engine.security.identity import Principal
from engine.work_queue import WorkQueue

PROG = "switchboard tasks"
COLUMNS = ("id", "queue", "kind", "mode", "status", "assignee", "due_at", "control_id",
           "message_id")
WITH_PATIENT = (*COLUMNS[:-1], "patient", COLUMNS[-1])
SUMMARY = ("id", "queue", "kind", "mode", "status", "assignee", "due_at", "created_at",
           "completed_at", "decided_by", "row_id", "message_id", "control_id")


def tasks_command(args: argparse.Namespace) -> int:
    # No role check up front: each task's queue decides, in the work queue.
    return run_queue_command(PROG, args, None, _ACTIONS[args.action])


def _list(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    page = WorkQueue(engine).list(args.queue, args.status, args.assignee, args.kind,
                                  args.page, args.per_page, viewer=actor)
    # The patient is the payload's: listed where the queue lets the user read it.
    with_patient = any("patient" in item for item in page.items)
    print_page(page, WITH_PATIENT if with_patient else COLUMNS, args.json, "no tasks match")
    return OK


def _show(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).show(args.id, actor)
    if args.json:
        print_item(view, True)
        return OK
    print(f"for: {view['for'] or '-'}")
    for key in SUMMARY:
        print(f"{key}: {'-' if view[key] is None else view[key]}")
    for held in view["holds"]:
        print(f"holds: delivery {held['delivery_id']} to {held['destination']} ({held['status']})")
    if "payload" not in view:
        print("payload: not shown: your role does not read this queue's payloads")
        return OK
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


def _assign(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).assign(args.id, args.assignee, actor)
    print_done(f"task {args.id} assigned to {args.assignee}", view, args.json)
    return OK


def _unassign(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).unassign(args.id, actor)
    print_done(f"task {args.id} given back to its queue", view, args.json)
    return OK


def _approve(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).approve(args.id, actor, args.reason)
    print_done(f"task {args.id} approved: its held deliveries are released", view,
               args.json)
    return OK


def _reject(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).reject(args.id, actor, args.reason)
    print_done(f"task {args.id} rejected: its held deliveries are cancelled", view,
               args.json)
    return OK


def _complete(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = WorkQueue(engine).complete(args.id, actor, args.state, args.reason)
    state = f" as {args.state}" if args.state else ""
    print_done(f"task {args.id} completed{state}", view, args.json)
    return OK


_ACTIONS: dict[str, Handler] = {
    "list": _list,
    "show": _show,
    "assign": _assign,
    "unassign": _unassign,
    "approve": _approve,
    "reject": _reject,
    "complete": _complete,
}
