"""``switchboard status``: one screen of health per connection, read from the store
(see engine.status_report), as the ``--as`` user."""

from __future__ import annotations

import argparse
import json

from sqlalchemy import Engine

from engine.commands.queue_cli import OK, print_page, run_queue_command
from engine.journal import now_utc
from engine.queues import Page
from engine.security.identity import Principal
from engine.status_report import ConnectionStatus, read_status

PROG = "switchboard status"
COLUMNS = ("connection", "direction", "received", "routed", "delivered", "failed", "held",
           "waiting", "oldest", "exceptions", "last_error")
LAST_ERROR_WIDTH = 60


def status_command(args: argparse.Namespace) -> int:
    return run_queue_command(PROG, args, "message.read", _status)


def _status(engine: Engine, _actor: Principal, args: argparse.Namespace) -> int:
    rows = read_status(engine)
    if args.json:
        for row in rows:
            print(json.dumps(row.as_dict(), sort_keys=True))
        return OK
    items = [_line(row) for row in rows]
    print_page(Page(items, 1, len(items), len(items)), COLUMNS, False,
               "the catalog has no connections")
    return OK


def _line(row: ConnectionStatus) -> dict[str, object]:
    error = row.last_error
    if error and row.recovered:
        error = f"(delivering again) {error}"
    if error and len(error) > LAST_ERROR_WIDTH:
        error = error[:LAST_ERROR_WIDTH - 1] + "…"
    return {"connection": row.connection, "direction": row.direction,
            "received": row.received, "routed": row.routed, "delivered": row.delivered,
            "failed": row.failed, "held": row.held, "waiting": row.waiting,
            "oldest": _age(row) if row.oldest_waiting else None,
            "exceptions": row.open_exceptions, "last_error": error}


def _age(row: ConnectionStatus) -> str:
    assert row.oldest_waiting is not None
    seconds = max(0, int((now_utc() - row.oldest_waiting).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
