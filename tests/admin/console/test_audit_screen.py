"""The audit log screen over the test client, on SQLite and PostgreSQL: filters by who,
what, which object and when, sorting and pages on the server, the CSV export of every
match, the chain's status with "verify now" (a tampered chain shows as broken), content
views, and that only compliance and admins may open any of it."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from engine.security.audit import AuditLog
from engine.store.models import AuditEvent
from tests.queue_rows import PEOPLE

ROLES = {role: name for name, role in PEOPLE.items()}
COMPLIANCE = {"operator": "deny", "analyst": "deny", "approver": "deny",
              "compliance": "allow", "admin": "allow", "clinician": "deny", "registrar": "deny"}
ACCESS = {
    ("GET", "/audit/"): COMPLIANCE,
    ("GET", "/audit/export.csv"): COMPLIANCE,
    ("POST", "/audit/verify"): COMPLIANCE,
}
EVENTS = 1 + len(PEOPLE)  # the bootstrap, and each person added


def record(console, actor, action, target_type, target_id, detail=None, reason=None):
    with Session(console.engine) as session, session.begin():
        return AuditLog(console.engine).record(session, actor, action, target_type,
                                               target_id, detail, reason=reason).id


def page(browser, path: str) -> str:
    return html.unescape(browser.text(path))


def test_every_route_of_the_screen_is_in_the_access_table(console):
    routes = {(method, rule.rule) for rule in console.app.url_map.iter_rules()
              if rule.endpoint.startswith("audit.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(ACCESS)


def test_each_role_is_let_in_or_refused_and_anonymous_visitors_sent_to_sign_in(console):
    for (method, path), allowed in ACCESS.items():
        anonymous = console.anonymous()
        response = anonymous.get(path) if method == "GET" else anonymous.post(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/sign-in/")
        for role, verdict in allowed.items():
            browser = console.as_(ROLES[role])
            response = browser.get(path) if method == "GET" else browser.post(path)
            expected = {"allow": 302 if method == "POST" else 200, "deny": 403}[verdict]
            assert response.status_code == expected, (method, path, role)
    with Session(console.engine) as session:
        refused = {actor for actor in session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "access.denied"))}
        checks = list(session.scalars(select(AuditEvent.actor)
                                      .where(AuditEvent.action == "audit.verify")))
    assert refused == {"olive", "anna", "abe", "cora", "rita"}
    assert sorted(checks) == ["adam", "carl"]  # only the allowed checked the chain


def test_events_filter_by_who_what_object_and_time_on_the_server(console):
    record(console, "olive", "exception.retry", "exception", "41", {"attempts": 3})
    carl = console.as_("carl")
    everything = page(carl, "/audit/")
    assert "Not checked yet" in everything and "rules.bootstrap" in everything
    assert f"Showing 1–{EVENTS + 1} of {EVENTS + 1} events" in everything
    assert '<option value="exception.retry">exception.retry</option>' in everything
    retried = page(carl, "/audit/?actor=olive&action=exception.retry&target_type=exception"
                         "&target_id=41")
    assert "Showing 1–1 of 1 event" in retried
    assert "<dt>attempts:</dt> <dd>3</dd>" in retried
    assert "exception <strong>41</strong>" in retried
    assert "No events match these filters." in page(carl, "/audit/?actor=nobody")
    # Times are typed as the browser's datetime-local sends them, and read as UTC.
    assert "No events match" in page(carl, "/audit/?since=2999-01-01T00:00")
    assert f"of {EVENTS + 1} events" in page(carl, "/audit/?until=2999-01-01T00:00")
    wrong = carl.get("/audit/?since=yesterday")
    assert wrong.status_code == 400
    text = html.unescape(wrong.get_data(as_text=True))
    assert "From: “yesterday” is not a date and time" in text
    assert 'aria-invalid="true"' in text and "Fix the filter above" in text


def test_events_sort_and_page_on_the_server(console):
    carl = console.as_("carl")
    oldest = page(carl, "/audit/?sort=at&per_page=3")
    assert 'aria-sort="ascending"' in oldest
    assert oldest.index("rules.bootstrap") < oldest.index("user.add")
    assert f"Showing 1–3 of {EVENTS} events" in oldest
    assert 'href="/audit/?sort=at&per_page=3&page=2"' in oldest
    by_actor = page(carl, "/audit/?sort=-actor")
    assert by_actor.index("<td>test</td>") < by_actor.index("<td>system</td>")
    assert carl.get("/audit/?sort=hash").status_code == 400


def test_the_export_is_every_matching_event_as_csv(console):
    record(console, "carl", "content.view", "message", "m-7", {"view": "raw"},
           reason="=HYPERLINK(\"x\")")
    response = console.as_("carl").get("/audit/export.csv?per_page=2&sort=at")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert re.fullmatch(r'attachment; filename="audit-\d{4}-\d\d-\d\d\.csv"',
                        response.headers["Content-Disposition"])
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == EVENTS + 1  # every match, not one page
    assert rows[0]["action"] == "rules.bootstrap"
    viewed = rows[-1]
    assert (viewed["actor"], viewed["object type"], viewed["object id"], viewed["details"]) == (
        "carl", "message", "m-7", "view: raw")
    assert viewed["reason"] == "'=HYPERLINK(\"x\")"  # never run as a formula
    added = [row for row in rows if row["action"] == "user.add"]
    assert len(added) == len(PEOPLE) and "{" not in added[0]["details"]
    filtered = console.as_("carl").get("/audit/export.csv?action=user.add&actor=test")
    assert len(list(csv.DictReader(io.StringIO(filtered.get_data(as_text=True))))) == len(
        PEOPLE)
    assert console.as_("carl").get("/audit/export.csv?until=never").status_code == 400


def test_verify_now_records_the_verdict_and_a_tampered_chain_shows_as_broken(console):
    carl = console.as_("carl")
    response = carl.post("/audit/verify?actor=test")
    assert response.status_code == 302 and response.headers["Location"] == "/audit/?actor=test"
    intact = page(carl, "/audit/")
    assert f"The audit chain is intact: {EVENTS} events checked." in intact
    assert 'id="chain-verdict">Intact</span>' in intact
    assert f"{EVENTS} events checked" in intact and "by carl" in intact
    with Session(console.engine) as session, session.begin():
        target = session.scalar(select(AuditEvent.id).where(AuditEvent.target_id == "olive"))
        session.execute(update(AuditEvent).where(AuditEvent.id == target)
                        .values(detail={"role": "admin"}))
    assert carl.post("/audit/verify").status_code == 302
    broken = page(carl, "/audit/")
    assert 'id="chain-verdict">Broken</span>' in broken
    assert "1 event was changed or removed after it was recorded. Checked" in broken
    assert ("The audit chain is broken: 1 event was changed or removed after it was "
            "recorded. Each is listed under “The audit chain”.") in broken
    assert page(carl, "/audit/?action=audit.verify").count("<code>audit.verify</code>") == 2


def test_verify_now_needs_its_csrf_token(console):
    response = console.as_("carl").post("/audit/verify", csrf=False)
    assert response.status_code == 400
    assert "Not checked yet" in console.as_("carl").text("/audit/")


def test_content_views_appear_in_the_log(console):
    record(console, "olive", "content.view", "message", "m-9", {"view": "parsed"})
    carl = console.as_("carl")
    everything = page(carl, "/audit/")
    assert 'href="/audit/?event=content_view">Content views</a>' in everything
    views = page(carl, "/audit/?event=content_view")
    assert "Showing 1–1 of 1 event" in views
    assert '<span class="badge badge-info">content view</span>' in views
    assert "message <strong>m-9</strong>" in views and "<dt>view:</dt> <dd>parsed</dd>" in views


def test_opening_a_tasks_page_is_a_content_view_too(console):
    """A task's page with its payload shows patient data: its ``task.view`` is one of
    the content views the quick filter finds, badged as one, and kept by the form."""
    record(console, "olive", "content.view", "message", "m-9", {"view": "parsed"})
    record(console, "cora", "task.view", "task", "12")
    record(console, "olive", "exception.retry", "exception", "41")
    carl = console.as_("carl")
    views = page(carl, "/audit/?event=content_view")
    assert "Showing 1–2 of 2 events" in views
    assert views.count('<span class="badge badge-info">content view</span>') == 2
    assert "task <strong>12</strong>" in views and "exception.retry" not in views.split(
        "<tbody>")[1]
    assert "Showing only:</span>" in views and "<strong>content views</strong>" in views
    assert '<input type="hidden" name="event" value="content_view">' in views
    cora = page(carl, "/audit/?event=content_view&actor=cora")
    assert "Showing 1–1 of 1 event" in cora and "task <strong>12</strong>" in cora
    wrong = carl.get("/audit/?event=everything")
    assert wrong.status_code == 400
    assert "is not a kind of event this log can show" in html.unescape(
        wrong.get_data(as_text=True))


def test_one_event_is_found_by_its_number(console):
    target = record(console, "olive", "exception.retry", "exception", "41")
    carl = console.as_("carl")
    one = page(carl, f"/audit/?id={target}")
    assert "Showing 1–1 of 1 event" in one and f'<tr id="event-{target}">' in one
    assert carl.get("/audit/?id=forty-one").status_code == 400


def test_an_export_is_named_after_what_it_holds(console):
    carl = console.as_("carl")
    today = datetime.now(UTC).date().isoformat()

    def named(query: str) -> str:
        response = carl.get(f"/audit/export.csv?{query}")
        assert response.status_code == 200, query
        found = re.fullmatch(r'attachment; filename="([a-z0-9.-]+)"',
                             response.headers["Content-Disposition"])
        assert found, response.headers["Content-Disposition"]
        return found.group(1)

    assert named("") == f"audit-{today}.csv"
    assert named("event=content_view&actor=carl") == f"audit-{today}-content-views-by-carl.csv"
    assert named("since=2026-12-01T00:00&until=2026-12-07T00:00") == (
        "audit-2026-12-01-to-2026-12-07.csv")
    assert named("since=2026-12-01T08:30") == "audit-from-2026-12-01-0830.csv"
    assert named("until=2026-12-07") == "audit-before-2026-12-07.csv"
    assert named("action=user.add&target_type=user&target_id=olive") == (
        f"audit-{today}-user-add-user-olive.csv")
    assert named('actor=a"b;c/../\\d') == f"audit-{today}-by-a-b-c-d.csv"


def test_a_broken_chain_lists_each_event_at_fault_in_plain_words(console):
    carl = console.as_("carl")
    with Session(console.engine) as session, session.begin():
        edited, dropped = session.scalars(select(AuditEvent.id).where(
            AuditEvent.target_id.in_(["olive", "anna"])).order_by(AuditEvent.id)).all()
        session.execute(update(AuditEvent).where(AuditEvent.id == edited)
                        .values(detail={"role": "admin"}))
        session.execute(delete(AuditEvent).where(AuditEvent.id == dropped))
    assert carl.post("/audit/verify").status_code == 302
    broken = page(carl, "/audit/")
    listed = broken[broken.index('id="failing-events"'):broken.index("</table>")]
    rows = listed.split('<tr class="failing-event">')[1:]
    # The edited one; the one removed, as the anchor names it; the one after the gap.
    assert len(rows) == 3
    first, second, third = rows
    assert f'<a href="/audit/?id={edited}#event-{edited}">#{edited}</a>' in first
    assert "<td>test</td>" in first and "<code>user.add</code>" in first
    assert "This event was changed after it was recorded." in first
    assert f"#{dropped}" in second and "no longer in the log" in second
    assert "This event was removed from the log after it was recorded." in second
    assert 'href="/audit/?id=' not in second
    assert f'<a href="/audit/?id={dropped + 1}#event-{dropped + 1}">' in third
    assert "The event recorded just before this one was removed from the log." in third
    assert "3 events were changed or removed after they were recorded" in broken
    status = broken[broken.index('class="card mb-3 chain-status"'):broken.index("</section>")]
    primary = status[:status.index('<details class="small technical-details">')]
    for jargon in ("MAC", "hash chain", "(edited)"):
        assert jargon not in primary, jargon
    technical = broken[broken.index("<summary>Technical details</summary>"):]
    assert "HMAC-SHA256" in technical and f"event {edited} (edited)" in technical
    assert f'<tr id="event-{edited}">' in page(carl, f"/audit/?id={edited}")


def test_the_menu_shows_the_audit_log_only_to_compliance_and_admins(console):
    assert 'href="/audit/"' in console.as_("carl").text("/")
    assert 'href="/audit/"' in console.as_("adam").text("/")
    for name in ("olive", "anna", "abe"):
        assert 'href="/audit/"' not in console.as_(name).text("/"), name
