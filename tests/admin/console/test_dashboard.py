"""The dashboard: a tile per connection for those who watch the traffic; everyone else
starts at their task inbox."""

from __future__ import annotations

from tests.admin.console.test_role_matrix import ALL

WATCHERS = {**ALL, "clinician": "deny", "registrar": "deny"}
ACCESS = {
    ("GET", "/"): ALL,  # clinicians and registrars are sent on to their inbox
    ("GET", "/tiles"): WATCHERS,
    ("GET", "/charts"): WATCHERS,
}


def test_operators_see_a_tile_per_connection(console):
    page = console.as_("olive").text("/")
    for connection in ("ehr-adt-feed", "lab-system", "analytics-warehouse"):
        assert connection in page


def test_clinicians_start_at_their_inbox(console):
    answer = console.as_("cora").get("/")
    assert answer.status_code == 302 and answer.headers["Location"] == "/tasks/"


def test_the_charts_come_from_the_stores_rollups(console):
    from engine.throughput_rollup import ThroughputRecorder

    recorder = ThroughputRecorder(console.engine)
    for _ in range(3):
        recorder.count("ehr-adt-feed", "received")
    recorder.flush()
    recorder.close()
    page = console.as_("olive").text("/charts?window=hour&connection=ehr-adt-feed")
    assert "3 received" in page
    assert console.as_("olive").get("/charts?window=week").status_code == 400


def test_the_dashboard_counts_security_events(console):
    console.as_("cora").get("/tiles")  # a clinician may not: a denial
    page = console.as_("olive").text("/tiles")
    assert "Permission denials: <strong>1</strong>" in page
