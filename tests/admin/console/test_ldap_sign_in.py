"""Console sign-in with the directory configured, against a real slapd: the one
break-glass local admin, local passwords refused for everyone else, a directory group
mapped on the users screen letting its members in with its role, and a directory that
has stopped refusing everyone it would vouch for, in words that say so."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.security.sign_in import DIRECTORY_DOWN, NO_ROLE, NOT_RIGHT
from engine.security.users import UserStore
from engine.store.models import AuditEvent, ConsoleSession, User
from tests.admin.console.console_client import Browser, Console, console_app
from tests.admin.console.directory import BREAK_GLASS, ldap_settings
from tests.ldap_server import PARKING, USERS
from tests.queue_rows import prepared

LOCAL_PASSWORD = "correct horse battery staple"


@contextmanager
def directory_console(engine, server) -> Iterator[Console]:
    tokens = prepared(engine)
    app = console_app(engine, LDAP=ldap_settings(server.url), LDAP_BREAK_GLASS_USER=BREAK_GLASS)
    try:
        yield Console(app, engine, tokens)
    finally:
        app.extensions["switchboard"].close()


@pytest.fixture
def console(engine, ldap_server):
    with directory_console(engine, ldap_server) as console:
        yield console


def _sign_in(browser: Browser, name: str, password: str):
    return browser.post("/sign-in/", {"username": name, "password": password})


def _refusal(response) -> str:
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    return page.split('id="sign-in-refusal">')[1].split("</div>")[0]


def _attempts(engine, action):
    with Session(engine) as session:
        return [(e.actor, e.target_id, e.detail) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def _sessions(engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(ConsoleSession)) or 0


def test_the_break_glass_admin_signs_in_locally_audited_as_break_glass(console):
    UserStore(console.engine).set_password("adam", LOCAL_PASSWORD, "test")
    response = _sign_in(console.anonymous(), "adam", LOCAL_PASSWORD)
    assert response.status_code == 302
    [(actor, target, detail)] = _attempts(console.engine, "sign_in.break_glass")
    assert (actor, target, detail["reason"]) == ("adam", "adam", "break_glass")


def test_any_other_local_user_s_password_is_refused(console):
    UserStore(console.engine).set_password("olive", LOCAL_PASSWORD, "test")
    browser = console.anonymous()
    assert _refusal(_sign_in(browser, "olive", LOCAL_PASSWORD)) == NOT_RIGHT
    # The directory's olive is not the local olive: her directory password lets no one in.
    assert _refusal(_sign_in(browser, "olive", USERS["olive"][0])) == NOT_RIGHT
    reasons = [detail["reason"] for _, _, detail in _attempts(console.engine, "sign_in.failure")]
    assert reasons == ["directory: wrong password or unknown user",
                       "a local user has this name"]
    assert _sessions(console.engine) == 0


def test_a_group_mapped_on_the_users_screen_gives_its_members_that_role(console):
    pete = console.anonymous()
    assert _refusal(_sign_in(pete, "pete", USERS["pete"][0])) == NO_ROLE
    adam = console.as_("adam")
    adam.post("/users/ldap-groups", {"group": PARKING, "role": "operator"})
    assert _sign_in(pete, "pete", USERS["pete"][0]).status_code == 302
    assert 'href="/messages/"' in pete.text("/tasks/")
    [mapping] = console.app.extensions["switchboard"].role_mappings.list()
    adam.post(f"/users/ldap-groups/{mapping.id}/remove")
    adam.post("/users/ldap-groups", {"group": "Parking-Permits", "role": "clinician"})
    again = console.anonymous()
    assert _sign_in(again, "pete", USERS["pete"][0]).status_code == 302
    menu = again.text("/tasks/")
    assert 'href="/tasks/"' in menu and 'href="/messages/"' not in menu
    with Session(console.engine) as session:
        user = session.scalar(select(User).where(User.name == "pete"))
        assert (user.source, user.role, user.extra_roles) == ("ldap", "clinician", None)
    [(actor, _, detail)] = _attempts(console.engine, "user.roles")
    assert (actor, detail["role"], detail["was"]) == ("ldap", "clinician", ["operator", None])


def test_a_directory_user_s_own_token_works_until_an_admin_revokes_it(console):
    console.as_("adam").post("/users/ldap-groups", {"group": PARKING, "role": "operator"})
    pete = console.anonymous()
    assert _sign_in(pete, "pete", USERS["pete"][0]).status_code == 302
    assert "Your API tokens" in pete.text("/account/")  # and its form's new CSRF token
    pete.post("/account/tokens")
    [token] = re.findall(r'id="new-token">.*?<code class="text-break">(sb_[^<]+)</code>',
                         pete.text("/account/"), re.S)
    users = console.app.extensions["switchboard"].users  # the one the fixture closes
    assert users.authenticate_token(token).name == "pete"
    [issued] = users.tokens("pete")
    console.as_("adam").post(f"/users/user/pete/tokens/{issued.id}/revoke",
                              {"confirm": "yes"})
    assert users.authenticate_token(token) is None
    assert _attempts(console.engine, "token.revoke") == [("adam", "pete",
                                                          {"token_id": issued.id})]


def test_a_stopped_directory_is_a_clear_error_and_signs_nobody_in(engine,
                                                                   ldap_server_to_stop):
    with directory_console(engine, ldap_server_to_stop) as console:
        console.as_("adam").post("/users/ldap-groups", {"group": PARKING, "role": "operator"})
        ldap_server_to_stop.stop()
        before = _sessions(engine)
        browser = console.anonymous()
        assert _refusal(_sign_in(browser, "pete", USERS["pete"][0])) == DIRECTORY_DOWN
        assert _sessions(engine) == before
        assert browser.get("/tasks/").status_code == 302  # still not signed in
        [(_, target, detail)] = _attempts(engine, "sign_in.failure")
        assert (target, detail["reason"]) == ("pete", "directory unreachable")
        # The break-glass admin is how someone gets in to see to it.
        UserStore(engine).set_password("adam", LOCAL_PASSWORD, "test")
        assert _sign_in(console.anonymous(), "adam", LOCAL_PASSWORD).status_code == 302
