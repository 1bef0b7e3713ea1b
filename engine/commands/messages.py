"""``switchboard messages list|show``: the message log from the command line, with the
REST API's views (engine.message_log) and roles (engine.security.permissions), read as
the ``--as`` user. ``show`` says of each delivery why it waits and when it goes again."""

from __future__ import annotations

import argparse
import json

from sqlalchemy import Engine

from engine.commands.queue_cli import OK, Handler, print_page, run_queue_command
from engine.message_log import PARAMETERS, MessageLog
from engine.security.identity import Principal

PROG = "switchboard messages"
COLUMNS = ("message_id", "received_at", "source", "control_id", "type", "event", "status")
DELIVERY_COLUMNS = ("destination", "status", "attempts", "error_class", "next_attempt_at",
                    "last_error")


def messages_command(args: argparse.Namespace) -> int:
    handler: Handler = _list if args.action == "list" else _show
    return run_queue_command(PROG, args, "message.read", handler)


def _list(engine: Engine, _actor: Principal, args: argparse.Namespace) -> int:
    query = {name: getattr(args, name) for name in PARAMETERS}
    page = MessageLog(engine).list(query, args.page, args.per_page)
    print_page(page, COLUMNS, args.json, "no messages match")
    return OK


def _show(engine: Engine, _actor: Principal, args: argparse.Namespace) -> int:
    view = MessageLog(engine).show(args.message_id)
    if args.json:
        print(json.dumps(view, sort_keys=True))
        return OK
    for key in ("message_id", "received_at", "source", "control_id", "type", "event",
                "status", "status_reason", "rule_set_version"):
        print(f"{key}: {_text(view[key])}")
    print("timeline: " + ", ".join(f"{e['stage']} {e['at']}" for e in view["timeline"]))
    print("deliveries:" if view["deliveries"] else "deliveries: none")
    for delivery in view["deliveries"]:
        line = f"  {delivery['destination']}: {delivery['status']}"
        if delivery["attempts"]:
            line += f", {delivery['attempts']} attempt(s)"
        if delivery["error_class"]:
            line += f", last error ({delivery['error_class']}): {delivery['last_error']}"
        if delivery["next_attempt_at"]:
            line += f", next attempt {delivery['next_attempt_at']}"
        print(line)
    for task in view["tasks"]:
        print(f"task {task['id']}: {task['queue']} {task['kind']} ({task['mode']}), "
              f"{task['status']}")
    for item in view["exceptions"]:
        print(f"exception {item['id']}: {item['status']}, {item['error_class']}: "
              f"{item['summary']}")
    return OK


def _text(value: object) -> str:
    return "-" if value is None else str(value)
