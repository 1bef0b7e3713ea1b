"""``switchboard users add NAME --role ROLE | list | disable NAME``: managing API users
from the command line. Exit codes: 0 ok, 1 the change was refused, 2 usage error."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable

from sqlalchemy import inspect

from engine.security.users import UserError, UserStore, UserView
from engine.store.database import open_engine

OK, REFUSED, USAGE = 0, 1, 2
PROG = "switchboard users"


def users_command(action: str, name: str | None, role: str | None, database_url: str) -> int:
    problem = _usage_problem(action, name, role)
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return USAGE
    engine = open_engine(database_url)
    try:
        if not inspect(engine).has_table("users"):
            print(f"{PROG}: the store has no users table; run `switchboard db upgrade` first",
                  file=sys.stderr)
            return USAGE
        return _ACTIONS[action](UserStore(engine), name or "", role or "")
    except UserError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return REFUSED
    finally:
        engine.dispose()


def _usage_problem(action: str, name: str | None, role: str | None) -> str | None:
    if action not in _ACTIONS:
        return f"unknown action {action!r}: use add, list or disable"
    if action != "list" and not name:
        return f"{action} needs a user NAME"
    if action == "list" and name:
        return "list takes no NAME"
    if action == "add" and not role:
        return "add needs --role ROLE"
    if action != "add" and role:
        return f"{action} takes no --role"
    return None


def _add(store: UserStore, name: str, role: str) -> int:
    token = store.add(name, role, cli_actor())
    print(f"added user {name} with role {role}")
    print(f"token: {token}")
    print("This token will not be shown again: store it somewhere safe now.")
    return OK


def _list(store: UserStore, _name: str, _role: str) -> int:
    users = store.list()
    if not users:
        print("no users yet; add one with `switchboard users add NAME --role ROLE`")
        return OK
    rows = [("NAME", "ROLE", "STATUS", "TOKENS", "LAST USED")] + [_row(u) for u in users]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    return OK


def _row(user: UserView) -> tuple[str, str, str, str, str]:
    last = user.last_used_at.strftime("%Y-%m-%d %H:%M UTC") if user.last_used_at else "never"
    status = "disabled" if user.disabled else "active"
    return user.name, user.role.value, status, str(user.active_tokens), last


def _disable(store: UserStore, name: str, _role: str) -> int:
    revoked = store.disable(name, cli_actor())
    print(f"disabled user {name}; revoked {revoked} token(s)")
    return OK


def cli_actor() -> str:
    """Who to name in the audit trail for a change made at the command line."""
    try:
        login = getpass.getuser()
    except (OSError, KeyError, ImportError):
        # No login name in the environment and no passwd entry (a bare container).
        return "cli"
    return f"cli:{login}"[:64]


_ACTIONS: dict[str, Callable[[UserStore, str, str], int]] = {
    "add": _add,
    "list": _list,
    "disable": _disable,
}
