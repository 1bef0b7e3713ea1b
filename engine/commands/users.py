"""``switchboard users add NAME --role ROLE [--password] [--display-name TEXT] | list |
role NAME --role ROLE | disable NAME | enable NAME | passwd NAME |
reset-second-factor NAME``: managing users
from the command line. A password is asked for twice at a terminal, or read as one line
from standard input otherwise (for scripts); it is never an argument, which other users
could read.
Exit codes: 0 ok, 1 the change was refused, 2 usage error."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable

from sqlalchemy import inspect

from engine.security import passwords
from engine.security.users import UserError, UserStore, UserView
from engine.store.database import open_engine

OK, REFUSED, USAGE = 0, 1, 2
PROG = "switchboard users"


def users_command(action: str, name: str | None, role: str | None, database_url: str,
                  with_password: bool = False, display_name: str | None = None) -> int:
    problem = _usage_problem(action, name, role)
    if not problem and with_password and action != "add":
        problem = "--password goes with add; use passwd NAME to change one"
    if not problem and display_name is not None and action != "add":
        problem = "--display-name goes with add; an admin changes it on the user's page"
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return USAGE
    engine = open_engine(database_url)
    try:
        if not inspect(engine).has_table("users"):
            print(f"{PROG}: the store has no users table; run `switchboard db upgrade` first",
                  file=sys.stderr)
            return USAGE
        store = UserStore(engine)
        if action == "add" and with_password:
            password = read_password()
            try:
                passwords.check_new(password)
            except passwords.PasswordRefused as exc:
                raise UserError(exc.reason, hint=exc.hint) from None
            code = _add(store, name or "", role or "", display_name)
            # Set at the terminal: no change is asked of them at their next sign-in.
            store.set_password(name or "", password, cli_actor())
            print(f"set a console password for {name}")
            return code
        if action == "add":
            return _add(store, name or "", role or "", display_name)
        return _ACTIONS[action](store, name or "", role or "")
    except UserError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return REFUSED
    finally:
        engine.dispose()


def _usage_problem(action: str, name: str | None, role: str | None) -> str | None:
    if action not in _ACTIONS:
        return f"unknown action {action!r}: use one of {', '.join(_ACTIONS)}"
    if action != "list" and not name:
        return f"{action} needs a user NAME"
    if action == "list" and name:
        return "list takes no NAME"
    if action in ("add", "role") and not role:
        return f"{action} needs --role ROLE"
    if action not in ("add", "role") and role:
        return f"{action} takes no --role"
    return None


def _add(store: UserStore, name: str, role: str, display_name: str | None = None) -> int:
    token = store.add(name, role, cli_actor(), display_name=display_name)
    shown = f" ({display_name.strip()})" if display_name and display_name.strip() else ""
    print(f"added user {name}{shown} with role {role}")
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


def _enable(store: UserStore, name: str, _role: str) -> int:
    store.enable(name, cli_actor())
    print(f"enabled user {name}; issue them a token or a password to use")
    return OK


def _passwd(store: UserStore, name: str, _role: str) -> int:
    store.set_password(name, read_password(), cli_actor())
    print(f"set the console password of {name}; their console sessions have ended")
    return OK


def _role(store: UserStore, name: str, role: str) -> int:
    if store.set_role(name, role, cli_actor()):
        print(f"{name} now has the role {role}; their console sessions have ended")
    else:
        print(f"{name} already has the role {role}")
    return OK


def _reset_second_factor(store: UserStore, name: str, _role: str) -> int:
    store.reset_second_factor(name, cli_actor())
    print(f"removed the second factor of {name}; they can enrol a new one when they sign in")
    return OK


def read_password() -> str:
    """A new password: asked twice at a terminal, else one line of standard input."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New console password: ")
    if getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ", hint="Run the command again")
    return first


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
    "role": _role,
    "disable": _disable,
    "enable": _enable,
    "passwd": _passwd,
    "reset-second-factor": _reset_second_factor,
}
