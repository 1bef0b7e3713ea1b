"""The integration catalog screen over the test client, on SQLite and PostgreSQL: the
list with its filters, sorting and pages, a connection's page, the live health that
leads to the message browser, the CSV export, and who may open any of it. Nothing on
it shows message content."""

from __future__ import annotations

import csv
import html
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.models import AuditEvent
from tests.queue_rows import PEOPLE, delivery, entry, exception_item

ROLES = {role: name for name, role in PEOPLE.items()}
READERS = {"operator": "allow", "analyst": "allow", "approver": "allow",
           "compliance": "allow", "admin": "allow", "clinician": "deny", "registrar": "deny"}
ACCESS = {
    ("GET", "/catalog/"): READERS,
    ("GET", "/catalog/export.csv"): READERS,
    ("GET", "/catalog/<connection_id>"): READERS,
    ("GET", "/catalog/<connection_id>/health"): READERS,
}
SHIPPED = 19  # catalog/connections/*.yaml
SECRET_RAW = b"MSH|^~\\&|EHR|RIVERSIDE|||20260101||ADT^A08|C1|P|2.5.1\rPID|1||SECRET-MRN-991"


def concrete(rule: str) -> str:
    return rule.replace("<connection_id>", "lab-system")


def test_every_route_of_the_screen_is_in_the_access_table(console):
    routes = {(method, rule.rule) for rule in console.app.url_map.iter_rules()
              if rule.endpoint.startswith("catalog.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(ACCESS)


def test_each_role_is_let_in_or_refused_and_anonymous_visitors_sent_to_sign_in(console):
    for (_method, rule), allowed in ACCESS.items():
        path = concrete(rule)
        response = console.anonymous().get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/sign-in/")
        for role, verdict in allowed.items():
            response = console.as_(ROLES[role]).get(path)
            assert response.status_code == (200 if verdict == "allow" else 403), (path, role)
    with Session(console.engine) as session:
        refused = set(session.execute(select(AuditEvent.actor, AuditEvent.target_id)
                                      .where(AuditEvent.action == "access.denied")))
    assert refused == {("cora", "catalog"), ("rita", "catalog")}


def test_analysts_are_told_where_connections_are_added(console):
    assert 'catalog-to-studio' not in console.as_("carl").text("/catalog/")
    page = console.as_("anna").text("/catalog/")
    assert 'href="/studio/" id="catalog-to-studio"' in page


def test_the_list_shows_what_compliance_reviews_for_every_connection(console):
    page = console.as_("carl").text("/catalog/")
    assert "Integration catalog" in page and "published rule-set version 1" in page
    assert page.count('href="/catalog/') >= SHIPPED
    for seen in ("Laboratory information system", "Priya Raman", "Lab systems team",
                 "Outbound", "HL7 v2", "PHI", "De-identified", "Complete", "version 1",
                 "Patient:</strong> identifiers, names, birth date",
                 "99.5% · within 2 min · 24x7", "ITS-IFACE-003", "on file"):
        assert seen in page, seen
    # The escalations queue has no data scope written: its entry is incomplete.
    assert "Incomplete" in page and "No data scope" in page
    assert 'id="catalog-export" href="/catalog/export.csv"' in page
    assert "Showing 1–19 of 19 connections" in page


def test_filters_sorting_and_pages_are_the_servers(console):
    carl = console.as_("carl")
    feeds = carl.text("/catalog/?direction=inbound")
    assert "EHR outbound HL7 v2 feed" in feeds and "Bed board" not in feeds
    assert 'href="/catalog/export.csv?direction=inbound"' in feeds
    assert 'aria-sort="ascending"' not in feeds  # sorted by id, which has no column
    by_name = carl.text("/catalog/?sort=-name")
    assert 'aria-sort="descending"' in by_name and 'href="/catalog/?sort=name"' in by_name
    assert by_name.index("Scheduling desk") < by_name.index("Bed board")
    second = carl.text("/catalog/?per_page=5&page=2")
    assert "Showing 6–10 of 19 connections" in second
    assert 'href="/catalog/?per_page=5&amp;page=3"' in second
    incomplete = carl.text("/catalog/?complete=no")
    assert "Escalations queue" in incomplete and "Bed board" not in incomplete
    refused = carl.get("/catalog/?direction=sideways")
    assert refused.status_code == 400
    assert "direction 'sideways' is not one of" in html.unescape(refused.get_data(as_text=True))


def test_a_connections_page_shows_its_whole_entry(console):
    page = console.as_("carl").text("/catalog/lab-system")
    for seen in ("Laboratory information system", "MLLP lis.riverside.example:6661",
                 "mailto:priya.raman@riverside.example", "Phone +1 555 0100 ext 4410",
                 "identifies the patient", "(patient.birth_date)", "Merge (former identity)",
                 "<p class=\"mb-1\">3. Retry dead-lettered orders from the exception queue "
                 "once the LIS is back.</p>",
                 "in version 1", "99.5% available · delivered within 2 min · support 24x7",
                 "Live health"):
        assert seen in page, seen
    queue = console.as_("carl").text("/catalog/nurse-review")
    assert "Read payloads: clinician" in queue
    missing = console.as_("carl").get("/catalog/retired-feed")
    assert missing.status_code == 404
    assert "no connection 'retired-feed'" in html.unescape(missing.get_data(as_text=True))


def test_live_health_leads_to_the_message_browser_without_showing_content(console):
    journal_id, _message = entry(console.engine, raw=SECRET_RAW)
    dead = delivery(console.engine, journal_id, "lab-system")
    exception_item(console.engine, journal_id, dead, connection_id="lab-system")
    carl = console.as_("carl")
    listing = carl.text("/catalog/?text=lab-system")
    assert 'href="/messages/?destination=lab-system&amp;delivery_status=failed"' in listing
    assert "Last error: connection refused" in listing
    health = carl.text("/catalog/lab-system/health")
    assert '<strong>1</strong> failed' in health
    assert 'href="/exceptions/?connection=lab-system">1 open exception</a>' in health
    feed = carl.text("/catalog/ehr-adt-feed/health")
    assert 'href="/messages/?source=ehr-adt-feed"' in feed
    # An approver may read the catalog but not the messages: the numbers lead nowhere.
    approver = console.as_("abe").text("/catalog/lab-system/health")
    assert "/messages/" not in approver and "<strong>1</strong> failed" in approver
    for path in ("/catalog/", "/catalog/lab-system", "/catalog/lab-system/health",
                 "/catalog/export.csv"):
        assert "SECRET-MRN-991" not in carl.text(path), path


def test_the_export_is_every_matching_connection_as_csv(console):
    journal_id, _message = entry(console.engine)
    delivery(console.engine, journal_id, "lab-system")
    response = console.as_("carl").get("/catalog/export.csv?per_page=5")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="catalog.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == SHIPPED  # every connection, not one page
    lab = next(row for row in rows if row["id"] == "lab-system")
    assert (lab["business owner"], lab["classification"], lab["complete"]) == (
        "Priya Raman", "phi", "yes")
    assert lab["data scope"].startswith("Message envelope: all fields; Patient: identifiers")
    assert lab["recovery procedure"].startswith("1. If the LIS stops acknowledging")
    assert (lab["availability %"], lab["agreement on file"], lab["last changed in version"],
            lab["failed"], lab["last error"]) == ("99.5", "yes", "1", "1",
                                                  "connection refused")
    # A cell a spreadsheet would run as a formula is written as text.
    assert lab["technical owner phone"] == "'+1 555 0100 ext 4410"
    escalations = next(row for row in rows if row["id"] == "escalations")
    assert (escalations["complete"], escalations["missing"]) == ("no", "data scope")
    feeds = console.as_("carl").get("/catalog/export.csv?direction=inbound&sort=-id")
    ids = [row["id"] for row in csv.DictReader(io.StringIO(feeds.get_data(as_text=True)))]
    assert ids == ["portal-fhir", "partner-referrals", "lab-results-drop", "ehr-adt-feed"]


def test_the_menu_shows_the_catalog_only_to_those_who_may_open_it(console):
    assert 'href="/catalog/"' in console.as_("carl").text("/")
    for name in ("cora", "rita"):
        assert 'href="/catalog/"' not in console.as_(name).text("/tasks/")


def test_the_patient_data_filter_is_the_servers_and_kept_in_the_export(console):
    carl = console.as_("carl")
    page = carl.text("/catalog/")
    assert '<option value="yes">Holds patient data</option>' in page
    holding = carl.text("/catalog/?patient_data=yes")
    assert "Showing 1–17 of 17 connections" in holding
    assert '<option value="yes" selected>Holds patient data</option>' in holding
    assert 'href="/catalog/export.csv?patient_data=yes"' in holding
    # The de-identified warehouse and the escalations queue (operational) hold none.
    assert "Analytics warehouse" not in holding and "Patient outreach" in holding
    none = carl.text("/catalog/?patient_data=no")
    assert "Showing 1–2 of 2 connections" in none
    exported = carl.get("/catalog/export.csv?patient_data=yes")
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert len(rows) == 17 and {row["holds patient data"] for row in rows} == {"yes"}
    assert exported.headers["Content-Disposition"] == (
        'attachment; filename="catalog-patient-data.csv"')
    assert carl.get("/catalog/?patient_data=maybe").status_code == 400


def test_an_export_is_named_after_its_filters(console):
    carl = console.as_("carl")

    def named(query: str) -> str:
        response = carl.get(f"/catalog/export.csv?{query}")
        assert response.status_code == 200, query
        return response.headers["Content-Disposition"]

    assert named("classification=phi") == 'attachment; filename="catalog-phi.csv"'
    assert named("direction=inbound&complete=no&patient_data=yes") == (
        'attachment; filename="catalog-patient-data-inbound-incomplete.csv"')
    assert named('text=Lab "x"; y') == 'attachment; filename="catalog-matching-lab-x-y.csv"'


def test_entries_to_check_are_flagged_in_plain_words(console):
    carl = console.as_("carl")
    page = carl.text("/catalog/")
    outreach = page[page.index('data-flag="identifiers-in-limited"'):]
    outreach = outreach[:outreach.index("</div>")]
    assert 'fa-exclamation-triangle' in page and "Identifies patients</span>" in outreach
    assert ("Classified as a limited data set, but its data scope lets through fields "
            "that identify the patient: identifiers such as the MRN, names, phone or "
            "email. Classify it as PHI, or narrow its data scope.") in html.unescape(outreach)
    assert page.count('data-flag="shared-agreement"') == 2
    assert page.count('data-flag="identifiers-in-limited"') == 1
    entry = html.unescape(carl.text("/catalog/clinic-south"))
    assert "<strong>To check</strong>" in entry
    assert ("Shares agreement ITS-IFACE-012 with “EHR referral status write-back") in entry
    assert 'See <a href="/catalog/ehr-referral-status">ehr-referral-status</a>.' in entry
    assert "Holds patient data" in entry
    assert "To check" not in carl.text("/catalog/lab-system")
    rows = list(csv.DictReader(io.StringIO(carl.get("/catalog/export.csv").get_data(
        as_text=True))))
    checks = {row["id"]: row["to check"] for row in rows if row["to check"]}
    assert set(checks) == {"patient-outreach", "clinic-south", "ehr-referral-status"}
    assert checks["clinic-south"].startswith("Shares agreement ITS-IFACE-012 with")
