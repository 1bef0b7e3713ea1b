"""The dashboard: a tile per connection for those who watch the traffic; everyone else
starts at their task inbox."""

from __future__ import annotations

from tests.admin.console.test_role_matrix import ALL

WATCHERS = {**ALL, "clinician": "deny", "registrar": "deny"}
ACCESS = {
    ("GET", "/"): ALL,  # clinicians and registrars are sent on to their inbox
    ("GET", "/tiles"): WATCHERS,
}


def test_operators_see_a_tile_per_connection(console):
    page = console.as_("olive").text("/")
    for connection in ("ehr-adt-feed", "lab-system", "analytics-warehouse"):
        assert connection in page


def test_clinicians_start_at_their_inbox(console):
    answer = console.as_("cora").get("/")
    assert answer.status_code == 302 and answer.headers["Location"] == "/tasks/"
