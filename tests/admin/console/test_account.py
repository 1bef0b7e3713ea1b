"""A user's own account page: theme, second factor and their own API tokens."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.models import AuditEvent
from tests.admin.console.test_role_matrix import ALL

ACCESS = {
    ("GET", "/account/"): ALL,
    ("POST", "/account/theme"): ALL,
    ("POST", "/account/second-factor"): ALL,
    ("POST", "/account/tokens"): ALL,
    ("POST", "/account/tokens/<id:token_id>/revoke"): ALL,
}


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
