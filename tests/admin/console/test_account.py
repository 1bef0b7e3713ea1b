"""A user's own account page: theme, second factor and their own API tokens."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.security import passwords
from engine.security.users import UserStore
from engine.store.models import AuditEvent, User
from tests.admin.console.test_role_matrix import ALL

ACCESS = {
    ("GET", "/account/"): ALL,
    ("POST", "/account/theme"): ALL,
    ("POST", "/account/second-factor"): ALL,
    ("POST", "/account/tokens"): ALL,
    ("POST", "/account/tokens/<id:token_id>/revoke"): ALL,
    ("POST", "/account/password"): ALL,
}
PASSWORD = "correct horse battery staple"
CHOSEN = "a passphrase only olive knows"


def test_a_user_issues_a_token_that_is_shown_once_and_works(console):
    browser = console.as_("cora")
    assert browser.post("/account/tokens").status_code == 302
    page = browser.text("/account/")
    token = re.search(r'id="new-token">.*?<code[^>]*>(sb_[^<]+)</code>', page, re.S).group(1)
    assert token not in browser.text("/account/")  # shown once only
    answer = console.app.test_client().get("/api/tasks",
                                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200


def test_a_user_revokes_only_their_own_tokens(console):
    olive = console.as_("olive")
    olive.post("/account/tokens")
    page = olive.text("/account/")
    token_ids = [int(n) for n in re.findall(r"/account/tokens/(\d+)/revoke", page)]
    cora = console.as_("cora")
    cora.post(f"/account/tokens/{token_ids[0]}/revoke")
    assert "of cora" in cora.text("/account/")  # "no token N of cora"
    assert olive.post(f"/account/tokens/{token_ids[0]}/revoke").status_code == 302
    with Session(console.engine) as session:
        revoked = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "token.revoke")).all()
    assert [(e.actor, e.detail["token_id"]) for e in revoked] == [("olive", token_ids[0])]


def test_the_theme_is_kept_per_user(console):
    anna = console.as_("anna")
    anna.post("/account/theme", {"theme": "dark", "back": "/account/"})
    assert 'data-theme="dark"' in anna.text("/account/")
    assert 'data-theme="light"' in console.as_("olive").text("/account/")
    anna.post("/account/theme", {"theme": "purple", "back": "/account/"})
    assert "unknown theme" in anna.text("/account/")


def _hash(engine, name):
    with Session(engine) as session:
        return session.scalar(select(User.password_hash).where(User.name == name))


def test_a_local_user_changes_their_own_password(console):
    UserStore(console.engine).set_password("olive", PASSWORD, "test")
    olive, elsewhere = console.as_("olive"), console.as_("olive")
    assert "Change your password" in olive.text("/account/")
    response = olive.post("/account/password", {"current_password": PASSWORD,
                                                "password": CHOSEN, "password_again": CHOSEN})
    assert response.status_code == 302 and response.headers["Location"] == "/account/"
    assert "Your password is changed." in olive.text("/account/")
    assert passwords.verify(_hash(console.engine, "olive"), CHOSEN)
    assert elsewhere.get("/account/").status_code == 302  # her other session ended
    with Session(console.engine) as session:
        [event] = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "user.password.change")).all()
    assert (event.actor, event.detail) == ("olive", {"was_required": False})


@pytest.mark.parametrize(("form", "field", "error"), [
    ({"current_password": "", "password": CHOSEN, "password_again": CHOSEN},
     "current_password", "Type your current password."),
    ({"current_password": "not my password", "password": CHOSEN, "password_again": CHOSEN},
     "current_password", "the current password is not right"),
    ({"current_password": PASSWORD, "password": "short", "password_again": "short"},
     "password", "the password is shorter than 12 characters"),
    ({"current_password": PASSWORD, "password": CHOSEN, "password_again": "other"},
     "password_again", "The two passwords differ."),
    ({"current_password": PASSWORD, "password": PASSWORD, "password_again": PASSWORD},
     "password", "the new password is the same as the old one"),
])
def test_a_password_change_that_cannot_be_made_says_why_beside_the_field(console, form,
                                                                         field, error):
    UserStore(console.engine).set_password("olive", PASSWORD, "test")
    response = console.as_("olive").post("/account/password", form)
    assert response.status_code == 400
    found = re.search(rf'id="{field}-error">([^<]*)<', response.get_data(as_text=True))
    assert found and error in found.group(1)
    assert passwords.verify(_hash(console.engine, "olive"), PASSWORD)


def test_a_directory_user_is_told_their_password_is_changed_in_the_directory(console):
    with Session(console.engine) as session, session.begin():
        session.execute(update(User).where(User.name == "cora").values(source="ldap"))
    page = console.as_("cora").text("/account/")
    assert "is changed there, not here" in page and "current_password" not in page
    response = console.as_("cora").post("/account/password", {
        "current_password": PASSWORD, "password": CHOSEN, "password_again": CHOSEN})
    assert response.status_code == 400
    assert "is changed there, not here" in response.get_data(as_text=True)
    assert _hash(console.engine, "cora") is None


def test_the_navbar_shows_a_display_name_where_one_is_set(console):
    assert re.search(r"fa-user-circle[^>]*></span> olive\s", console.as_("olive").text("/account/"))
    UserStore(console.engine).set_display_name("olive", "Olive Ortiz", "test")
    page = console.as_("olive").text("/account/")
    assert "</span> Olive Ortiz" in page and "Signs in as" in page


def test_the_navbar_is_not_inside_the_page_s_margins(console):
    """The navbar spans the window edge to edge: no .container around it, only around
    the page below it."""
    page = console.as_("olive").text("/account/")
    wrapper = re.search(r'<div class="([^"]*console-page[^"]*)"', page).group(1)
    assert "container" not in wrapper
    between = page[page.index(wrapper):page.index('<nav class="navbar')]
    assert "container" not in between
    assert page.index("</nav>") < page.index('<div class="container-fluid">') \
        < page.index('<main id="main"')
