"""The arguments of ``switchboard messages``, ``status``, ``exceptions`` and ``tasks``:
the commands that read or act on the store as an ``--as`` user. Only argparse
here: the handlers (and the store they open) are imported when a command runs, so
other commands start fast."""

from __future__ import annotations

import argparse
from typing import Any

from engine.commands.store_ids import store_id

FILE_HELP = "the edited message or body; - reads stdin"


def add_queue_commands(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--as", dest="actor", required=True, metavar="NAME",
                        help="an enabled user whose role allows the action; named in the "
                             "audit trail")
    common.add_argument("--database", metavar="URL", help="default: "
                        "$SWITCHBOARD_DATABASE_URL, else SQLite in ./instance")
    common.add_argument("--json", action="store_true", help="JSON, one object per line")
    _message_commands(commands, common)
    status = commands.add_parser("status", parents=[common], help="one screen of health "
                                 "per connection: counts, what waits, exceptions, last error")
    status.set_defaults(run=_run_status)
    _exception_commands(commands, common)
    _task_commands(commands, common)


def _message_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser("messages", help="the message log")
    command.set_defaults(run=_run_messages)
    actions = command.add_subparsers(required=True, metavar="ACTION", dest="action")
    listing = actions.add_parser("list", parents=[common], help="messages, newest first")
    for option in ("control-id", "source", "status", "type", "event", "patient",
                   "patient-authority", "destination"):
        listing.add_argument(f"--{option}")
    listing.add_argument("--delivery-status", help="with a delivery in this status (to "
                         "--destination, when given); failed means dead or failed")
    listing.add_argument("--path", help="an indexed HL7 path, e.g. OBX-3.1 (with --value)")
    listing.add_argument("--value", help="the value at --path, exactly")
    for option in ("since", "until"):
        listing.add_argument(f"--{option}", metavar="TIME",
                             help="ISO 8601 with a UTC offset, e.g. 2026-11-24T08:00+00:00")
    listing.add_argument("--sort", choices=["-received_at", "received_at"],
                         help="newest first (-received_at, the default) or oldest first")
    _paging(listing)
    actions.add_parser("show", parents=[common], help="one message: its timeline, and for "
                       "each delivery why it waits and when it goes again"
                       ).add_argument("message_id")


def _exception_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser("exceptions", help="the exception queue")
    command.set_defaults(run=_run_exceptions)
    actions = command.add_subparsers(required=True, metavar="ACTION", dest="action")
    listing = actions.add_parser("list", parents=[common], help="exception items, newest first")
    for option in ("status", "connection", "error-class", "owner-role", "assignee"):
        listing.add_argument(f"--{option}")
    _paging(listing)
    _with_id(actions, common, "show", "one item with its delivery and message ids")
    _with_id(actions, common, "assign", "give an open item to a user").add_argument("assignee")
    _with_id(actions, common, "resolve", "close an item by hand").add_argument(
        "--reason", required=True, help="what was done (kept on the item, not audited)")
    _with_id(actions, common, "retry", "send the dead delivery or failed message again")
    _with_id(actions, common, "skip", "let what the failure holds back go on without it"
             ).add_argument("--reason", required=True,
                            help="why it may (kept on the item, not audited)")
    _with_id(actions, common, "reprocess", "send an edited copy; the original is kept"
             ).add_argument("--file", required=True, metavar="PATH", help=FILE_HELP)


def _task_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser("tasks", help="the work queue")
    command.set_defaults(run=_run_tasks)
    actions = command.add_subparsers(required=True, metavar="ACTION", dest="action")
    listing = actions.add_parser("list", parents=[common], help="tasks, oldest first")
    for option in ("queue", "status", "assignee", "kind"):
        listing.add_argument(f"--{option}")
    _paging(listing)
    _with_id(actions, common, "show", "one task, with its payload where its queue lets "
             "your role read it (audited)")
    _with_id(actions, common, "assign", "give an open task to a user").add_argument("assignee")
    _with_id(actions, common, "unassign", "give a claimed task back to its queue")
    _with_id(actions, common, "approve", "release the deliveries a hold task keeps"
             ).add_argument("--reason", help="kept on the task, not audited")
    _with_id(actions, common, "reject", "cancel the deliveries a hold task keeps"
             ).add_argument("--reason", required=True, help="kept on the task, not audited")
    complete = _with_id(actions, common, "complete", "mark a notify or work task done")
    complete.add_argument("--state", help="how it ended: one of the states its route row "
                          "names (required when it names some)")
    complete.add_argument("--reason", help="kept on the task and in its outcome event, "
                          "not audited")


def _with_id(actions: Any, common: argparse.ArgumentParser, name: str,
             text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, parents=[common], help=text)
    parser.add_argument("id", type=store_id)
    return parser


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page", type=store_id, default=1)
    parser.add_argument("--per-page", type=int, default=50)


def _run_status(args: argparse.Namespace) -> int:
    from engine.commands.status import status_command

    return status_command(args)


def _run_messages(args: argparse.Namespace) -> int:
    from engine.commands.messages import messages_command

    return messages_command(args)


def _run_exceptions(args: argparse.Namespace) -> int:
    from engine.commands.exceptions import exceptions_command

    return exceptions_command(args)


def _run_tasks(args: argparse.Namespace) -> int:
    from engine.commands.tasks import tasks_command

    return tasks_command(args)
