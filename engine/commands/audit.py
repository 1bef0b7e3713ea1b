"""``switchboard audit verify``: check the audit chain against its key and its anchor,
and name the first event that was edited, inserted or deleted, or a cut tail.
Exit codes: 0 intact, 1 broken, 2 usage error (no store, no key, bad URL).

The handler's imports wait until the command runs, so other commands start fast."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.security.audit import Verdict

INTACT, BROKEN, USAGE = 0, 1, 2
PROG = "switchboard audit verify"


def add_audit_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="the audit trail")
    tools = audit.add_subparsers(required=True, metavar="TOOL")
    verify = tools.add_parser("verify", help="check the audit chain; name the first edited, "
                              "inserted or deleted event, or a cut tail")
    verify.add_argument("--database", metavar="URL", help="default: "
                        "$SWITCHBOARD_DATABASE_URL, else SQLite in ./instance")
    verify.add_argument("--anchor", type=Path, metavar="FILE",
                        help="the anchor file to check against (default: "
                             "$SWITCHBOARD_AUDIT_ANCHOR, else this database's file in "
                             "$SWITCHBOARD_AUDIT_ANCHOR_DIR or ./instance)")
    verify.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from engine.store.database import default_url

    url = str(args.database or os.environ.get("SWITCHBOARD_DATABASE_URL")
              or default_url())
    return verify_command(url, args.anchor)


def verify_command(database_url: str, anchor: Path | None = None) -> int:
    from sqlalchemy import inspect
    from sqlalchemy.exc import ArgumentError, OperationalError

    from engine.errors import SwitchboardError
    from engine.security.audit import AuditLog
    from engine.security.audit_anchor import AuditAnchor
    from engine.store.database import open_engine

    try:
        engine = open_engine(database_url)
    except ArgumentError:
        # Not echoed: a malformed URL may still hold a password.
        return _usage("--database is not a database URL (e.g. postgresql://host/db)")
    try:
        if not inspect(engine).has_table("audit_events"):
            return _usage("the store has no audit_events table; run `switchboard db "
                          "upgrade` first")
        verdict = AuditLog(engine, anchor=AuditAnchor(anchor) if anchor else None).check()
    except SwitchboardError as exc:
        return _usage(str(exc))
    except OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        return _usage(f"cannot read the store at {where}: {exc.orig}")
    finally:
        engine.dispose()
    print(describe(verdict))
    return INTACT if verdict.ok else BROKEN


def describe(verdict: Verdict) -> str:
    """The verdict in a line or two, as ``switchboard audit verify`` prints it."""
    if verdict.first is None:
        if verdict.anchor_head is None:
            return (f"audit chain intact: {verdict.checked} events; the anchor "
                    f"{verdict.anchor.path} holds no heads, so a cut tail would go unseen")
        return (f"audit chain intact: {verdict.checked} events, "
                f"anchor head {verdict.anchor_head} matches")
    first = verdict.first
    line = f"audit chain broken at event {first.event_id}: {first.kind} ({first.text})"
    if verdict.checked and verdict.counts.get("edited", 0) == verdict.checked:
        line += ("\nevery event fails its MAC: the audit key is probably not the one that "
                 "wrote them (SWITCHBOARD_AUDIT_KEY, SWITCHBOARD_AUDIT_KEY_FILE or "
                 "instance/audit.key)")
    return line


def _usage(problem: str) -> int:
    print(f"{PROG}: {problem}", file=sys.stderr)
    return USAGE
