"""``switchboard exceptions list|show|assign|resolve|retry|reprocess|skip``: the exception
queue from the command line, with the REST API's rules (engine.exception_queue) and
roles (engine.security.permissions), acting as the ``--as`` user."""

from __future__ import annotations

import argparse

from sqlalchemy import Engine

from engine.commands.queue_cli import (
    OK,
    Handler,
    print_done,
    print_item,
    print_page,
    read_edit,
    run_queue_command,
)
from engine.exception_queue import ExceptionQueue
from engine.security.identity import Principal

PROG = "switchboard exceptions"
COLUMNS = ("id", "status", "error_class", "connection", "assignee", "summary")
_ONE = {"deliveries": "delivery", "messages": "message"}


def exceptions_command(args: argparse.Namespace) -> int:
    action, handler = _ACTIONS[args.action]
    return run_queue_command(PROG, args, action, handler)


def _list(engine: Engine, _actor: Principal, args: argparse.Namespace) -> int:
    filters = {"status": args.status, "connection": args.connection,
               "error_class": args.error_class, "owner_role": args.owner_role,
               "assignee": args.assignee}
    page = ExceptionQueue(engine).list(filters, args.page, args.per_page)
    print_page(page, COLUMNS, args.json, "no exception items match")
    return OK


def _show(engine: Engine, _actor: Principal, args: argparse.Namespace) -> int:
    print_item(ExceptionQueue(engine).show(args.id), args.json)
    return OK


def _assign(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = ExceptionQueue(engine).assign(args.id, args.assignee, actor.name)
    print_done(f"exception {args.id} assigned to {args.assignee}", view, args.json)
    return OK


def _resolve(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = ExceptionQueue(engine).resolve(args.id, args.reason, actor.name)
    print_done(f"exception {args.id} resolved", view, args.json)
    return OK


def _retry(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = ExceptionQueue(engine).retry(args.id, actor.name)
    delivery = view["delivery"]
    done = (f"delivery {delivery['id']} {delivery['status']}" if delivery
            else f"message {view['message_id']} queued for routing")
    print_done(f"exception {args.id} retried: {done}", view, args.json)
    return OK


def _skip(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = ExceptionQueue(engine).skip(args.id, args.reason, actor.name)
    what, count = next(iter(view["detail"]["skip"]["released"].items()))
    failure = (f"delivery {view['delivery']['id']}" if view["delivery"]
               else f"message {view['message_id']}")
    print_done(f"exception {args.id} skipped: {count} {_ONE[what] if count == 1 else what} "
               f"behind {failure} may go on", view, args.json)
    return OK


def _reprocess(engine: Engine, actor: Principal, args: argparse.Namespace) -> int:
    view = ExceptionQueue(engine).reprocess(args.id, read_edit(args.file), actor.name)
    replacement = view["replacement"] or {}
    made = (f"delivery {replacement['delivery_id']}" if "delivery_id" in replacement
            else f"message {replacement.get('message_id')}")
    print_done(f"exception {args.id} reprocessed: replacement {made} "
               f"{replacement.get('status')}", view, args.json)
    return OK


_ACTIONS: dict[str, tuple[str, Handler]] = {
    "list": ("exception.read", _list),
    "show": ("exception.read", _show),
    "assign": ("exception.assign", _assign),
    "resolve": ("exception.resolve", _resolve),
    "retry": ("exception.retry", _retry),
    "reprocess": ("exception.reprocess", _reprocess),
    "skip": ("exception.skip", _skip),
}
