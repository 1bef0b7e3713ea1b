"""What ``switchboard exceptions`` and ``switchboard tasks`` share: the store, the
``--as`` user checked as the REST API checks them (against the same role table, or for
tasks by the work queue, per task's queue), the output, and the exit codes: 0 ok, 1
refused (unknown id, a state that does not allow the action, a user or role that may
not), 2 usage (bad input, a store not yet created)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect

from engine.queues import Forbidden, Invalid, NotFound, Page, Refused
from engine.security.identity import Principal
from engine.security.permissions import may, refusal
from engine.security.users import UserStore
from engine.store.database import default_url, open_engine

OK, REFUSED, USAGE = 0, 1, 2

Handler = Callable[[Engine, Principal, argparse.Namespace], int]


def run_queue_command(prog: str, args: argparse.Namespace, action: str | None,
                      handler: Handler) -> int:
    """Run ``handler`` as the ``--as`` user, if their role may take ``action`` (None:
    the queue the handler acts on decides)."""
    engine = open_engine(database_url(args.database))
    try:
        if not inspect(engine).has_table("tasks"):
            return fail(prog, "the store has no queues; run `switchboard db upgrade` first",
                        USAGE)
        principal = UserStore(engine).principal(args.actor)
        if principal is None:
            return fail(prog, f"no enabled user {args.actor!r}: --as names an existing user "
                        "who acts; see `switchboard users list`", REFUSED)
        if action is not None and not may(principal.roles, action):
            return fail(prog, refusal(action), REFUSED)
        return handler(engine, principal, args)
    except (NotFound, Forbidden, Refused) as error:
        return fail(prog, str(error), REFUSED)
    except Invalid as error:
        return fail(prog, str(error), USAGE)
    finally:
        engine.dispose()


def database_url(given: str | None) -> str:
    return str(given or os.environ.get("SWITCHBOARD_DATABASE_URL")
               or default_url())


def fail(prog: str, text: str, code: int) -> int:
    print(f"{prog}: {text}", file=sys.stderr)
    return code


def read_edit(path: str) -> bytes:
    """The edited message or body from a file, or stdin for ``-``, as bytes: an HL7 v2
    message keeps the character set its MSH-18 declares."""
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()


def print_page(page: Page, columns: Sequence[str], as_json: bool, nothing: str) -> None:
    """One line per item: an aligned table, or one JSON object per line."""
    if as_json:
        for item in page.items:
            print(json.dumps(item, sort_keys=True))
        return
    if not page.items:
        print(nothing)
        return
    rows = [[c.upper() for c in columns]] + [[_cell(item.get(c)) for c in columns]
                                              for item in page.items]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    shown_to = (page.page - 1) * page.per_page + len(page.items)
    if shown_to < page.total:
        total = f"{page.total}" if page.total_exact else f"at least {page.total}"
        print(f"{shown_to} of {total} shown; next: --page {page.page + 1}",
              file=sys.stderr)


def print_item(view: dict[str, Any], as_json: bool) -> None:
    """One item: ``field: value`` lines, or one JSON object."""
    if as_json:
        print(json.dumps(view, sort_keys=True))
        return
    for key, value in view.items():
        print(f"{key}: {_cell(value)}")


def print_done(line: str, view: dict[str, Any], as_json: bool) -> None:
    """What an action did: one line, or the item as it now stands in JSON."""
    print(json.dumps(view, sort_keys=True) if as_json else line)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)
