"""``switchboard users``: exit codes and what is printed."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.cli import main
from engine.commands.users import users_command
from engine.security.audit import AuditLog
from engine.security.roles import Role
from engine.security.users import UserStore
from engine.store.models import AuditEvent
from tests.store_template import migrated

TOKEN_LINE = re.compile(r"^token: (sb_[A-Za-z0-9_-]{43})$", re.MULTILINE)


@pytest.fixture
def url(engine):
    migrated(engine)
    return engine.url.render_as_string(hide_password=False)


def authenticated(engine, token):
    """Who ``token`` authenticates as, through a store closed again at once."""
    users = UserStore(engine)
    try:
        return users.authenticate_token(token)
    finally:
        users.close()


def add(url, capsys, name="alice", role="analyst"):
    assert users_command("add", name, role, url) == 0
    return capsys.readouterr()


def test_add_prints_the_token_once_with_a_warning(engine, url, capsys):
    out = add(url, capsys).out
    token = TOKEN_LINE.search(out).group(1)
    assert out == (f"added user alice with role analyst\ntoken: {token}\n"
                   "This token will not be shown again: store it somewhere safe now.\n")
    assert authenticated(engine, token).name == "alice"


def test_list_prints_a_table_without_tokens(url, capsys):
    token = TOKEN_LINE.search(add(url, capsys, "bob", "operator").out).group(1)
    add(url, capsys, "alice", "admin")
    assert users_command("disable", "bob", None, url) == 0
    capsys.readouterr()
    assert users_command("list", None, None, url) == 0
    out = capsys.readouterr().out
    assert out == ("NAME   ROLE      STATUS    TOKENS  LAST USED\n"
                   "alice  admin     active    1       never\n"
                   "bob    operator  disabled  0       never\n")
    assert token not in out


def test_list_of_no_users_says_how_to_add_one(url, capsys):
    assert users_command("list", None, None, url) == 0
    assert capsys.readouterr().out == (
        "no users yet; add one with `switchboard users add NAME --role ROLE`\n")


def test_disable_revokes_and_says_so(engine, url, capsys):
    token = TOKEN_LINE.search(add(url, capsys).out).group(1)
    assert users_command("disable", "alice", None, url) == 0
    assert capsys.readouterr().out == "disabled user alice; revoked 1 token(s)\n"
    assert authenticated(engine, token) is None


def test_changes_name_the_command_line_in_the_audit_trail(engine, url, capsys):
    add(url, capsys)
    users_command("disable", "alice", None, url)
    assert AuditLog(engine).verify() == []
    with Session(engine) as session:
        actors = session.scalars(select(AuditEvent.actor)).all()
    assert len(actors) == 2 and all(actor.startswith("cli") for actor in actors)


@pytest.mark.parametrize("action, name, role, message", [
    ("add", "alice", "analyst", "user 'alice' already exists. "
                                "Choose another name, or issue the user a new token"),
    ("add", "Bob", "analyst", "user name 'Bob' is not allowed. "
                              "Use 2 to 64 characters from a-z, 0-9, '.', '_' and '-'"),
    ("add", "bob", "root", "unknown role 'root'. Choose one of: admin, analyst, approver, "
                           "clinician, compliance, operator, registrar"),
    ("disable", "ghost", None, "no such user: 'ghost'. See `switchboard users list`"),
])
def test_a_refused_change_exits_1_with_the_reason(url, capsys, action, name, role, message):
    add(url, capsys)
    assert users_command(action, name, role, url) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"switchboard users: {message}\n")


@pytest.mark.parametrize("action, name, role, message", [
    ("add", None, "analyst", "add needs a user NAME"),
    ("add", "bob", None, "add needs --role ROLE"),
    ("disable", None, None, "disable needs a user NAME"),
    ("disable", "bob", "admin", "disable takes no --role"),
    ("list", "bob", None, "list takes no NAME"),
    ("list", None, "admin", "list takes no --role"),
    ("role", "bob", None, "role needs --role ROLE"),
    ("remove", "bob", None, "unknown action 'remove': use one of add, list, role, disable, "
                            "enable, passwd, reset-second-factor"),
])
def test_usage_errors_exit_2(url, capsys, action, name, role, message):
    assert users_command(action, name, role, url) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"switchboard users: {message}\n")
    assert users_command("list", None, None, url) == 0
    assert "no users yet" in capsys.readouterr().out


def test_a_store_not_yet_upgraded_exits_2_and_says_what_to_run(engine, capsys):
    url = engine.url.render_as_string(hide_password=False)
    assert users_command("list", None, None, url) == 2
    assert capsys.readouterr().err == ("switchboard users: the store has no users table; "
                                       "run `switchboard db upgrade` first\n")


def test_the_switchboard_command_runs_it(engine, url, capsys):
    assert main(["users", "add", "alice", "--role", "clinician", "--database", url]) == 0
    token = TOKEN_LINE.search(capsys.readouterr().out).group(1)
    assert authenticated(engine, token).name == "alice"
    assert main(["users", "list", "--database", url]) == 0
    assert "alice  clinician  active" in capsys.readouterr().out


def test_a_registrar_is_a_role_the_command_gives(engine, url, capsys):
    """Registration and HIM staff own patient identity: the identity-review queue is
    theirs."""
    assert main(["users", "add", "rita", "--role", "registrar", "--database", url]) == 0
    token = TOKEN_LINE.search(capsys.readouterr().out).group(1)
    assert authenticated(engine, token).roles == {Role.REGISTRAR}
    assert main(["users", "list", "--database", url]) == 0
    assert "rita  registrar  active" in capsys.readouterr().out


def test_add_takes_an_optional_display_name(engine, url, capsys):
    assert main(["users", "add", "nina", "--role", "clinician", "--display-name",
                 "Nina Patel, RN", "--database", url]) == 0
    assert capsys.readouterr().out.startswith(
        "added user nina (Nina Patel, RN) with role clinician\n")
    users = UserStore(engine)
    try:
        assert users.user("nina").display_name == "Nina Patel, RN"
    finally:
        users.close()


def test_a_display_name_goes_only_with_add(url, capsys):
    assert users_command("disable", "nina", None, url, display_name="Nina") == 2
    assert "--display-name goes with add" in capsys.readouterr().err


def test_passwd_at_the_terminal_asks_for_no_change_at_the_next_sign_in(engine, url,
                                                                       monkeypatch, capsys):
    users = UserStore(engine)
    try:
        users.add("nina", "clinician", "adam", password="set by an admin here",
                  change_required=True)
        monkeypatch.setattr("sys.stdin", io.StringIO("chosen by nina herself\n"))
        assert users_command("passwd", "nina", None, url) == 0
        assert not users.user("nina").password_change_required
    finally:
        users.close()


def test_role_changes_a_user_s_role(engine, url, capsys):
    token = TOKEN_LINE.search(add(url, capsys).out).group(1)
    assert users_command("role", "alice", "clinician", url) == 0
    assert capsys.readouterr().out == (
        "alice now has the role clinician; their console sessions have ended\n")
    assert authenticated(engine, token).roles == frozenset({Role.CLINICIAN})
    assert users_command("role", "alice", "clinician", url) == 0
    assert capsys.readouterr().out == "alice already has the role clinician\n"
    assert users_command("role", "nobody", "clinician", url) == 1
