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


def tile(page: str, connection: str) -> str:
    start = page.index(f'data-connection="{connection}"')
    return page[start:page.index('data-connection="', start + 20)] \
        if 'data-connection="' in page[start + 20:] else page[start:]


def test_a_destination_that_recovered_shows_its_error_as_the_past(console):
    """Found in the operators' check: the bed board came back and its dead letters were
    retried, yet its tile still said its last error in red; what waited behind a failure
    read as ordinary waiting; and a tile did not say when its connection last worked."""
    from sqlalchemy import update

    from engine.journal import now_utc
    from engine.store.models import Delivery
    from tests.queue_rows import held_behind_failure

    engine = console.engine
    dead, behind = held_behind_failure(engine)
    page = console.as_("olive").text("/tiles")
    north = tile(page, "clinic-north")
    assert "border-danger" in north and "North Clinic results inbox" in north
    assert "1 behind a failed delivery for the same patient" in north
    assert "<summary" in north and "connection refused" in north  # read by keyboard too
    assert "Last delivered: <strong>never</strong>" in north
    assert "Last message in: <strong><span title=" in tile(page, "ehr-adt-feed")
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id.in_([dead, behind])).values(
            status="delivered", delivered_at=now_utc()))
    north = tile(console.as_("olive").text("/tiles"), "clinic-north")
    assert "border-danger" not in north and "border-warning" not in north
    assert "Delivering again" in north and "text-danger" not in north
    assert "connection refused" in north  # kept, as the past


def test_latency_reads_in_units_people_use(console):
    from admin.console.templates import duration

    assert [duration(v) for v in (None, 12.4, 4200, 185_000, 46_292_839)] == [
        "", "12 ms", "4.2 s", "3 min 5 s", "12 h 51 min"]


def test_a_count_leads_only_where_the_role_may_go(console):
    """Approvers see the counts, but may open neither the message log nor the
    exception queue: the counts are not links for them."""
    abe = console.as_("abe").text("/")
    assert 'href="/messages/' not in abe and 'href="/exceptions/?connection=' not in abe
    olive = console.as_("olive").text("/")
    assert 'href="/messages/' in olive and 'href="/exceptions/?connection=' in olive
