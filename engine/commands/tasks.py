"""``switchboard tasks list|show|assign|approve|reject|complete``: the work queue from
the command line, with the REST API's rules (engine.work_queue) and roles
(engine.security.permissions), acting as the ``--as`` user."""

from __future__ import annotations

import argparse

from sqlalchemy import Engine

from engine.commands.queue_cli import (
    OK,
    Handler,
    print_done,
    print_item,
    print_page,
    run_queue_command,
)
from engine.work_queue import WorkQueue

PROG = "switchboard tasks"
COLUMNS = ("id", "queue", "kind", "mode", "status", "assignee", "due_at")


def tasks_command(args: argparse.Namespace) -> int:
    action, handler = _ACTIONS[args.action]
    return run_queue_command(PROG, args, action, handler)


def _list(engine: Engine, _actor: str, args: argparse.Namespace) -> int:
    page = WorkQueue(engine).list(args.queue, args.status, args.assignee, args.kind,
                                  args.page, args.per_page)
    print_page(page, COLUMNS, args.json, "no tasks match")
    return OK


def _show(engine: Engine, actor: str, args: argparse.Namespace) -> int:
    print_item(WorkQueue(engine).show(args.id, actor), args.json)
    return OK


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
    view = WorkQueue(engine).complete(args.id, actor)
    print_done(f"task {args.id} completed", view, args.json)
    return OK


_ACTIONS: dict[str, tuple[str, Handler]] = {
    "list": ("task.list", _list),
    "show": ("task.show", _show),
    "assign": ("task.assign", _assign),
    "approve": ("task.approve", _approve),
    "reject": ("task.reject", _reject),
    "complete": ("task.complete", _complete),
}
