"""Change review over the test client: the queue of versions in review with their
gates, a version's page (the side-by-side diff, gates, impact preview from its start to
its counts, approve, reject with a reason, publish, the author's fix in a new draft),
four-eyes on the page and on the server, the history with rollback and the version
each engine part runs, and the diff of any two versions. On SQLite; approving and
publishing on PostgreSQL too. Nothing on these pages shows message content."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.console.change_reading import change_count, side_by_side
from admin.health import RUNNING_VERSIONS
from engine.change_control import ChangeControl
from engine.impact_preview import PreviewRunner
from engine.rules.version_diff import diff_contents
from engine.store.models import AuditEvent
from tests.queue_rows import PEOPLE, as_, entry, sample
from tests.rule_versions import ANALYTICS, NEW_DESCRIPTION, draft, in_review
from tests.waiting import wait_until

READERS = {"analyst": "allow", "approver": "allow", "compliance": "allow", "admin": "allow",
           "operator": "deny", "clinician": "deny", "registrar": "deny"}
APPROVERS = {**READERS, "analyst": "deny", "compliance": "deny"}
PREVIEWERS = {**READERS, "compliance": "deny"}
AUTHORS = {**READERS, "approver": "deny", "compliance": "deny"}
ACCESS = {
    ("GET", "/changes/"): READERS,
    ("GET", "/changes/history"): READERS,
    ("GET", "/changes/diff"): READERS,
    ("GET", "/changes/<version:version>"): READERS,
    ("GET", "/changes/<version:version>/preview"): READERS,
    ("GET", "/changes/<version:version>/impact"): READERS,
    ("POST", "/changes/<version:version>/preview"): PREVIEWERS,
    ("POST", "/changes/<version:version>/approve"): APPROVERS,
    ("POST", "/changes/<version:version>/reject"): APPROVERS,
    ("POST", "/changes/<version:version>/publish"): APPROVERS,
    ("POST", "/changes/<version:version>/rollback"): APPROVERS,
    ("POST", "/changes/<version:version>/fix"): AUTHORS,
}
sqlite_only = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)


def status_of(console, version: int) -> str:
    return str(ChangeControl(console.engine).show(version)["status"])


@sqlite_only
def test_every_route_of_the_screen_is_in_the_access_table(console):
    routes = {(method, rule.rule) for rule in console.app.url_map.iter_rules()
              if rule.endpoint.startswith("changes.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(ACCESS)


@sqlite_only
def test_the_queue_lists_versions_in_review_oldest_first_with_their_gates(console):
    first = in_review(console.engine)
    second = in_review(console.engine, previewed=False)
    approved = in_review(console.engine)
    ChangeControl(console.engine).approve(approved, as_("abe"))
    page = console.as_("abe").text("/changes/")
    waiting = page[page.index('id="review-queue"'):page.index('id="approved-queue"')]
    assert waiting.index(f"Version {first}<") < waiting.index(f"Version {second}<")
    assert "Describe the analytics feed better" in waiting and "anna" in waiting
    assert "All passed" in waiting and "Impact preview not run yet" in waiting
    assert "Impact preview failed" not in waiting  # nothing went wrong: a step to take
    later = page[page.index('id="approved-queue"'):]
    assert f'href="/changes/{approved}"' in later and f"Version {first}<" not in later


@sqlite_only
def test_the_author_and_an_editor_get_no_approve_button_and_the_server_refuses_them(console):
    own = in_review(console.engine, author="adam")
    adam = console.as_("adam")
    page = adam.text(f"/changes/{own}")
    assert 'id="approve"' not in page
    assert "You wrote this version; another approver must review it" in page
    refused = adam.post(f"/changes/{own}/approve")
    assert refused.status_code == 403 and "author may not approve" in refused.get_data(
        as_text=True)
    edited = in_review(console.engine, author="anna", editor="adam")
    page = adam.text(f"/changes/{edited}")
    assert 'id="approve"' not in page and "You changed this version" in page
    assert adam.post(f"/changes/{edited}/approve").status_code == 403
    assert status_of(console, own) == status_of(console, edited) == "in_review"
    assert 'id="approve"' in console.as_("abe").text(f"/changes/{own}")
    with Session(console.engine) as session:
        denied = session.scalars(select(AuditEvent.target_id).where(
            AuditEvent.action == "access.denied", AuditEvent.actor == "adam")).all()
    assert denied == ["changes.approve", "changes.approve"]


@sqlite_only
def test_a_failed_gate_is_named_and_approval_is_refused(console):
    version = in_review(console.engine, previewed=False)
    abe = console.as_("abe")
    page = abe.text(f"/changes/{version}")
    assert 'id="approve"' not in page
    assert 'id="gates-block"' in page and "impact preview</a>" in page
    assert 'id="gate-preview" data-passed="no"' in page
    assert 'id="gate-tests" data-passed="yes"' in page
    refused = abe.post(f"/changes/{version}/approve")
    assert refused.status_code == 409
    assert "the preview gate failed" in refused.get_data(as_text=True)
    assert status_of(console, version) == "in_review"


@sqlite_only
def test_a_rejection_needs_a_reason_which_the_author_reads_and_fixes_in_a_new_draft(console):
    version = in_review(console.engine)
    abe = console.as_("abe")
    empty = abe.post(f"/changes/{version}/reject", {"reason": "  "})
    text = empty.get_data(as_text=True)
    assert empty.status_code == 400 and 'id="reject-error"' in text
    assert 'aria-describedby="reject-error"' in text
    assert status_of(console, version) == "in_review"
    done = abe.post(f"/changes/{version}/reject", {"reason": "Name the dashboards' owner."})
    assert done.status_code == 302 and status_of(console, version) == "rejected"
    anna = console.as_("anna")
    page = anna.text(f"/changes/{version}")
    assert "Rejected by abe" in page and "Name the dashboards&#39; owner." in page
    assert 'id="fix"' in page and 'id="reject"' not in page
    assert 'id="fix"' not in console.as_("carl").text(f"/changes/{version}")
    fixed = anna.post(f"/changes/{version}/fix")
    assert fixed.status_code == 302
    new = int(fixed.headers["Location"].rsplit("/", 1)[1])
    assert fixed.headers["Location"] == f"/studio/{new}"
    shown = ChangeControl(console.engine).show(new)
    assert (shown["status"], shown["parent"], shown["author"]) == ("draft", version, "anna")


@sqlite_only
def test_an_impact_preview_starts_shows_its_progress_then_counts_per_destination(console):
    engine = console.engine
    _journal_id, message_id = entry(engine, raw=sample("fhir-converter/ADT-A01-01.hl7"))
    versions = ChangeControl(engine)
    version = versions.create_draft(as_("anna"), "Stop feeding analytics")["version"]
    versions.delete_document(version, as_("anna"), ANALYTICS)
    abe = console.as_("abe")
    bad = abe.post(f"/changes/{version}/preview", {"scope": "window", "since": "soon",
                                                  "limit": "50"})
    assert bad.status_code == 400 and 'id="since-error"' in bad.get_data(as_text=True)
    started = abe.post(f"/changes/{version}/preview", {"scope": "last", "limit": "20"})
    assert started.status_code == 302
    waiting = abe.text(f"/changes/{version}/preview")
    assert 'data-status="queued"' in waiting and "hx-get" in waiting
    assert "Waiting for the engine to start it" in waiting

    def finished() -> str | None:
        panel = abe.text(f"/changes/{version}/preview")
        return panel if 'data-finished="yes"' in panel else None

    runner = PreviewRunner(engine, poll=0.05)
    runner.start()
    try:
        done = wait_until(finished, what="the preview to finish")
    finally:
        runner.stop()
    assert "hx-get" not in done and 'id="preview-counts"' in done
    # The page that watched it run is drawn again: its gates and approve button follow.
    polled = abe.get(f"/changes/{version}/preview", headers={"HX-Request": "true"})
    assert polled.headers.get("HX-Refresh") == "true"
    row = done[done.index('data-destination="analytics-warehouse"'):]
    row = row[:row.index("</tr>")]
    assert 'data-count="removed">0<' not in row and 'data-count="added">0<' in row
    report = console.as_("anna").text(f"/changes/{version}/impact?destination="
                                      "analytics-warehouse")
    assert f'href="/messages/{message_id}/"' in report
    assert "analytics-warehouse" in report and "MSH|" not in report
    # An approver may not read messages: the id is named, not linked.
    assert f'href="/messages/{message_id}/"' not in abe.text(f"/changes/{version}/impact")


def test_an_approver_approves_and_publishes_a_version(console):
    version = in_review(console.engine)
    abe = console.as_("abe")
    page = abe.text(f"/changes/{version}")
    assert 'id="approve"' in page and "All passed" in page
    approved = abe.post(f"/changes/{version}/approve", {"reason": "wording only"})
    assert approved.status_code == 302 and status_of(console, version) == "approved"
    page = abe.text(f"/changes/{version}")
    assert 'id="publish"' in page and "is approved" in page
    published = abe.post(f"/changes/{version}/publish")
    assert published.status_code == 302 and status_of(console, version) == "published"
    assert status_of(console, 1) == "superseded"
    assert "is published: the engines switch to it now" in abe.text(f"/changes/{version}")
    history = abe.text("/changes/history")
    assert "<strong>abe</strong> approved: <q class=\"event-reason\">wording only</q>" in history
    assert "<strong>abe</strong> published" in history


@sqlite_only
def test_a_published_version_is_rolled_back_from_the_history_with_a_reason(console):
    version = in_review(console.engine)
    versions = ChangeControl(console.engine)
    versions.approve(version, as_("abe"))
    versions.publish(version, as_("abe"))
    abe = console.as_("abe")
    page = abe.text("/changes/history")
    assert 'id="rollback-1"' in page and f'id="rollback-{version}"' not in page
    assert 'id="rollback-1"' not in console.as_("anna").text("/changes/history")
    empty = abe.post("/changes/1/rollback", {"reason": ""})
    assert empty.status_code == 400 and 'id="rollback-error-1"' in empty.get_data(as_text=True)
    done = abe.post("/changes/1/rollback", {"reason": "The dashboards broke"})
    assert done.status_code == 302
    restored = versions.history("published").items[0]
    assert (restored["restores_version"], restored["version"]) == (1, version + 1)
    page = abe.text("/changes/history")
    assert "rolled back to version 1: <q class=\"event-reason\">The dashboards broke</q>" in page
    assert "the rules of version 1 again" in page


@sqlite_only
def test_the_diff_of_two_versions_is_side_by_side_with_steps_between_changes(console):
    version = draft(console.engine)
    carl = console.as_("carl")
    page = html.unescape(carl.text(f"/changes/diff?from=1&to={version}"))
    assert f"Version 1 against version {version}" in page
    assert "Route table analytics" in page and 'id="change-1"' in page
    before = page[page.index('class="diff-side diff-before"'):]
    assert before.index("for operational and quality analytics") < before.index(
        NEW_DESCRIPTION)
    assert 'href="#change-1"' in page
    assert "Compare two versions" in carl.text("/changes/diff")
    missing = carl.get("/changes/diff?from=1&to=999")
    assert missing.status_code == 404 and "No rule-set version 999: choose" in missing.get_data(
        as_text=True)
    # The review page shows the same diff against the version's parent.
    review = html.unescape(carl.text(f"/changes/{version}"))
    assert "What changed, against version 1" in review and NEW_DESCRIPTION in review


@sqlite_only
def test_the_history_says_which_version_each_engine_part_runs(console):
    page = console.as_("carl").text("/changes/history")
    assert "runs no engine parts to ask" in page and "published version, 1" in page
    console.app.config[RUNNING_VERSIONS] = lambda: {"delivery": 1, "pipeline-0": 1}
    page = console.as_("carl").text("/changes/history")
    assert "pipeline-0 <strong>version 1</strong>" in page
    assert "<strong>system</strong> published at first start" in page


@sqlite_only
def test_those_outside_change_review_are_refused(console):
    version = in_review(console.engine, previewed=False)
    for name in ("olive", "cora", "rita"):
        assert console.as_(name).get(f"/changes/{version}").status_code == 403
    assert console.as_("carl").post(f"/changes/{version}/approve").status_code == 403
    assert set(PEOPLE.values()) == set(READERS)


@sqlite_only
def test_the_menu_offers_changes_to_those_who_review_and_read_them(console):
    for name in ("anna", "abe", "carl", "adam"):
        assert 'href="/changes/"' in console.as_(name).text("/account/"), name
    for name in ("olive", "cora", "rita"):
        assert 'href="/changes/"' not in console.as_(name).text("/account/"), name


@sqlite_only
def test_compliance_reads_a_version_in_review_but_is_offered_no_action(console):
    version = in_review(console.engine)
    page = console.as_("carl").text(f"/changes/{version}")
    assert "An approver decides on this version; you may read it." in page
    for offered in ('id="approve"', 'id="reject"', 'id="start-preview"', 'id="fix"'):
        assert offered not in page, offered
    assert 'id="start-preview"' in console.as_("anna").text(f"/changes/{version}")


def test_route_rows_catalog_scopes_and_moves_read_as_rows_members_and_places():
    before = {"documents": [
        {"path": "rules/routes/r.yaml", "kind": "routes", "data": {"id": "r", "rows": [
            {"id": "a", "to": ["x"]}, {"id": "b", "to": ["y"]}, {"id": "c", "to": ["z"]}]}},
        {"path": "catalog/connections/x.yaml", "kind": "connection",
         "data": {"id": "x", "data_scope": ["patient.name", "patient.birth_date"]}}]}
    after = {"documents": [
        {"path": "rules/routes/r.yaml", "kind": "routes", "data": {"id": "r", "rows": [
            {"id": "b", "to": ["y"]}, {"id": "a", "to": ["x", "w"]},
            {"id": "d", "to": ["z"]}]}},
        {"path": "catalog/connections/x.yaml", "kind": "connection",
         "data": {"id": "x", "data_scope": ["patient.name", "patient.address"]}}]}
    blocks = side_by_side(diff_contents(before, after).as_dict())
    routes, catalog = blocks
    lines = {line.what: line for line in routes.lines}
    assert lines["row a · to[1]"].after == "w" and lines["row a · to[1]"].before is None
    assert lines["row c"].status == "removed" and "to:\n- z" in lines["row c"].before
    assert lines["row d"].status == "added" and lines["row d"].before is None
    moved = [line for line in routes.lines if line.status == "moved"]
    assert [(m.before, m.after) for m in moved] in (
        [("position 1", "position 2")], [("position 2", "position 1")])
    [scope] = catalog.lines
    assert (scope.what, scope.status) == ("data_scope", "members")
    assert (scope.removed, scope.added) == (("patient.birth_date",), ("patient.address",))
    assert [line.number for block in blocks for line in block.lines] == list(
        range(1, change_count(blocks) + 1))
    assert (routes.section, catalog.title) == ("Route tables", "Connection x")


def test_the_first_version_is_not_compared_with_itself_nor_gated(console):
    page = console.as_("abe").text("/changes/1")
    assert 'id="first-version"' in page and "hold the same rules" not in page
    assert 'id="gates"' not in page and 'id="preview-form"' not in page


def test_a_reviewer_reads_each_changed_document_whole_and_a_reason_keeps_its_lines(console):
    version = in_review(console.engine)
    page = console.as_("abe").text(f"/changes/{version}")
    assert f'href="/studio/{version}/yaml?path={ANALYTICS}"' in page
    assert f'/studio/{version}/yaml' not in console.as_("carl").text(f"/changes/{version}")
    ChangeControl(console.engine).reject(version, as_("abe"), "1. Name the owner\n2. Test LL")
    rejected = console.as_("anna").text(f"/changes/{version}")
    assert 'class="mt-1 reason-text" id="rejection-reason">1. Name the owner\n2. Test LL' in (
        rejected)
