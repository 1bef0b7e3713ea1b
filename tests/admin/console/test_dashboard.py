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


def test_a_tasks_page_with_its_patient_data_counts_as_a_content_view(console):
    from sqlalchemy.orm import Session

    from engine.security.audit import AuditLog

    with Session(console.engine) as session, session.begin():
        log = AuditLog(console.engine)
        log.record(session, "olive", "content.view", "message", "m-1", None)
        log.record(session, "cora", "task.view", "task", "12", None)
    assert "Content views: <strong>2</strong>" in console.as_("olive").text("/tiles")
    # Compliance reads each count in the audit log, filtered to those events.
    tiles = console.as_("carl").text("/tiles")
    assert 'Content views: <a href="/audit/?event=content_view"><strong>2</strong></a>' in tiles
    assert '<a href="/audit/?event=access_denied">' in tiles
