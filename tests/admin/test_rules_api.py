"""Change control over REST, on SQLite and PostgreSQL: the lifecycle, four-eyes and the
role checks hold for direct API calls, gates refuse approval by name, rollback
publishes an earlier version as a new revision, and every step is audited."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.impact_preview import PreviewRunner
from engine.rule_versions import RuleSetCache
from engine.security.audit import AuditLog
from engine.store.models import AuditEvent, RuleSetVersion
from tests.queue_rows import PEOPLE

VERSIONS = "/api/rule-sets/versions"
ROLES = {role: name for name, role in PEOPLE.items()}  # one user per role


def draft(api, as_user="anna", summary="Describe the analytics feed better", **body):
    status, created = api.call("POST", VERSIONS, as_user, json={"summary": summary, **body})
    assert status == 201, created
    return created["version"]


def retitle(api, version, as_user="anna", description="Every event, de-identified."):
    """A change that keeps every rule test passing: a route table's description."""
    status, content = api.call("GET", f"{VERSIONS}/{version}/content", as_user)
    assert status == 200
    routes = next(d for d in content["documents"] if d["path"] == "rules/routes/analytics.yaml")
    data = {**copy.deepcopy(routes["data"]), "description": description}
    return api.call("PUT", f"{VERSIONS}/{version}/documents", as_user,
                    json={"path": routes["path"], "kind": "routes", "data": data})


def previewed(api, engine, version, as_user="anna"):
    status, preview = api.call("POST", f"{VERSIONS}/{version}/previews", as_user,
                               json={"limit": 50})
    assert status == 202, preview
    PreviewRunner(engine).run_pending()
    status, preview = api.call("GET", f"/api/rule-sets/previews/{preview['id']}", as_user)
    assert preview["status"] == "done", preview
    return preview


def in_review(api, engine, author="anna"):
    version = draft(api, author)
    assert retitle(api, version, author)[0] == 200
    assert api.call("POST", f"{VERSIONS}/{version}/submit", author)[0] == 200
    previewed(api, engine, version, author)
    return version


def approved(api, engine):
    version = in_review(api, engine)
    status, body = api.call("POST", f"{VERSIONS}/{version}/approve", "abe")
    assert status == 200, body
    return version


def test_the_first_start_publishes_the_shipped_rules_as_a_system_bootstrap(api, engine):
    status, page = api.call("GET", VERSIONS, "carl")
    assert status == 200
    [first] = page["items"]
    assert (first["version"], first["status"], first["author"]) == (1, "published", "system")
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "rules.bootstrap")).one()
    assert (event.actor, event.target_id, event.before_hash) == ("system", "1", None)
    assert event.after_hash == first["content_hash"]
    assert "system bootstrap" in event.reason


def test_a_draft_goes_through_review_to_publish_and_engines_pick_it_up(api, engine):
    cache = RuleSetCache(engine, recheck_after=0)
    assert cache.current().version == 1
    version = draft(api)
    before = api.call("GET", f"{VERSIONS}/{version}", "anna")[1]["content_hash"]
    status, edited = retitle(api, version)
    assert status == 200 and edited["content_hash"] != before
    assert api.call("POST", f"{VERSIONS}/{version}/submit", "anna")[1]["status"] == "in_review"
    previewed(api, engine, version)
    status, body = api.call("POST", f"{VERSIONS}/{version}/approve", "abe",
                            json={"reason": "wording only"})
    assert (status, body["status"], body["approver"]) == (200, "approved", "abe")
    status, body = api.call("POST", f"{VERSIONS}/{version}/publish", "abe")
    assert (status, body["status"], body["published_by"]) == (200, "published", "abe")
    assert api.call("GET", f"{VERSIONS}/1", "anna")[1]["status"] == "superseded"
    assert cache.current().version == version
    with Session(engine) as session:
        actions = session.scalars(select(AuditEvent.action).where(
            AuditEvent.target_type == "rule_set_version").order_by(AuditEvent.id)).all()
    assert actions == ["rules.bootstrap", "rules.draft", "rules.edit", "rules.submit",
                       "rules.preview", "rules.approve", "rules.publish"]
    assert AuditLog(engine).verify() == []


def test_editing_a_draft_is_audited_with_its_hashes_before_and_after(api, engine):
    version = draft(api)
    before = api.call("GET", f"{VERSIONS}/{version}", "anna")[1]["content_hash"]
    after = retitle(api, version)[1]["content_hash"]
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "rules.edit")).one()
    assert (event.actor, event.before_hash, event.after_hash) == ("anna", before, after)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_only_analysts_and_admins_create_drafts(api, role):
    status, body = api.call("POST", VERSIONS, ROLES[role], json={"summary": "x"})
    expected = 201 if role in ("analyst", "admin") else 403
    assert status == expected, body
    if expected == 403:
        assert "analyst" in body["hint"]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_only_an_approver_or_admin_who_is_not_the_author_approves(api, engine, role):
    version = in_review(api, engine)
    status, body = api.call("POST", f"{VERSIONS}/{version}/approve", ROLES[role])
    if role in ("approver", "admin"):
        assert (status, body["status"]) == (200, "approved")
    else:
        assert status == 403 and body["hint"], body


def test_the_author_may_not_approve_their_own_version_even_as_admin(api, engine):
    version = in_review(api, engine, author="adam")
    status, body = api.call("POST", f"{VERSIONS}/{version}/approve", "adam")
    assert status == 403
    assert "author" in body["reason"] and "another approver" in body["hint"]
    assert api.call("POST", f"{VERSIONS}/{version}/approve", "abe")[0] == 200


@pytest.mark.parametrize("role", sorted(ROLES))
def test_only_an_approver_or_admin_publishes(api, engine, role):
    version = approved(api, engine)
    status, body = api.call("POST", f"{VERSIONS}/{version}/publish", ROLES[role])
    assert status == (200 if role in ("approver", "admin") else 403), body


@pytest.mark.parametrize("role", sorted(ROLES))
def test_only_the_author_or_an_admin_edits_or_submits_a_draft(api, role):
    version = draft(api)
    status, body = retitle(api, version, ROLES[role])
    allowed = role in ("analyst", "admin")
    assert status == (200 if allowed else 403), body
    status, body = api.call("POST", f"{VERSIONS}/{version}/submit", ROLES[role])
    assert status == (200 if allowed else 403), body


@pytest.mark.parametrize(("action", "state"), [
    ("approve", "draft"), ("publish", "draft"), ("publish", "in_review"),
    ("submit", "in_review"), ("submit", "published"), ("approve", "published"),
    ("reject", "draft"), ("reject", "published"), ("edit", "in_review"),
    ("edit", "published"),
])
def test_a_transition_the_state_does_not_allow_is_a_conflict(api, engine, action, state):
    version = 1 if state == "published" else (
        draft(api) if state == "draft" else in_review(api, engine))
    if action == "edit":
        status, body = retitle(api, version, "adam")
    else:
        payload = {"reason": "not this"} if action == "reject" else None
        status, body = api.call("POST", f"{VERSIONS}/{version}/{action}", "adam", json=payload)
    assert status == 409, body
    assert body["reason"].startswith(f"version {version} is {state}")
    assert body["hint"]


def test_a_rejected_version_stays_in_the_history_and_its_fix_names_it(api, engine):
    version = in_review(api, engine)
    assert api.call("POST", f"{VERSIONS}/{version}/reject", "abe", json={})[0] == 400
    status, body = api.call("POST", f"{VERSIONS}/{version}/reject", "abe",
                            json={"reason": "say why the description changed"})
    assert (status, body["status"], body["rejected_by"]) == (200, "rejected", "abe")
    assert body["review_reason"] == "say why the description changed"
    assert "review_note" not in body  # the reason, called so everywhere (item 12)
    fix = draft(api, summary="Reworded, with the reason", parent=version)
    status, body = api.call("GET", f"{VERSIONS}/{fix}", "anna")
    assert (body["parent"], body["status"]) == (version, "draft")
    status, page = api.call("GET", f"{VERSIONS}?status=rejected", "carl")
    assert [item["version"] for item in page["items"]] == [version]


def test_a_draft_needs_a_summary(api):
    status, body = api.call("POST", VERSIONS, "anna", json={"summary": "  "})
    assert status == 400 and "summary" in body["reason"]


def test_a_version_that_fails_a_gate_cannot_be_approved_and_the_gate_is_named(api, engine):
    version = draft(api, summary="Send analytics to a destination nobody catalogued")
    status, content = api.call("GET", f"{VERSIONS}/{version}/content", "anna")
    routes = next(d for d in content["documents"] if d["path"] == "rules/routes/analytics.yaml")
    data = copy.deepcopy(routes["data"])
    data["rows"][0]["to"] = ["analytics-warehouse", "nowhere-system"]
    assert api.call("PUT", f"{VERSIONS}/{version}/documents", "anna",
                    json={"path": routes["path"], "kind": "routes", "data": data})[0] == 200
    assert api.call("POST", f"{VERSIONS}/{version}/submit", "anna")[0] == 200
    status, body = api.call("POST", f"{VERSIONS}/{version}/approve", "abe")
    assert status == 409
    failed = {gate["gate"]: gate["findings"] for gate in body["gates"]}
    assert "catalog" in failed and "preview" in failed
    assert any("nowhere-system" in finding for finding in failed["catalog"])
    assert "catalog" in body["reason"]
    status, gates = api.call("GET", f"{VERSIONS}/{version}/gates", "anna")
    assert gates["passed"] is False


def test_the_preview_gate_wants_a_preview_of_exactly_this_content(api, engine):
    version = draft(api)
    assert retitle(api, version)[0] == 200
    previewed(api, engine, version)
    assert retitle(api, version, description="Changed after the preview.")[0] == 200
    assert api.call("POST", f"{VERSIONS}/{version}/submit", "anna")[0] == 200
    status, body = api.call("POST", f"{VERSIONS}/{version}/approve", "abe")
    assert status == 409
    assert [gate["gate"] for gate in body["gates"]] == ["preview"]


def test_an_empty_preview_counts_only_with_an_approvers_audited_override(api, engine):
    version = draft(api)
    with Session(engine) as session, session.begin():
        # A version with no rule tests, previewed against an empty journal.
        row = session.scalars(select(RuleSetVersion).where(
            RuleSetVersion.version == version)).one()
        content = copy.deepcopy(row.content)
        content["documents"] = [d for d in content["documents"] if d["kind"] != "tests"]
        content["files"] = {}
        from engine.rules.snapshot import content_hash
        row.content, row.content_hash = content, content_hash(content)
    preview = previewed(api, engine, version)
    assert preview["journal_messages"] + preview["test_messages"] == 0
    status, gates = api.call("GET", f"{VERSIONS}/{version}/gates", "anna")
    preview_gate = next(g for g in gates["gates"] if g["gate"] == "preview")
    assert not preview_gate["passed"] and "override" in preview_gate["findings"][0]
    path = f"/api/rule-sets/previews/{preview['id']}/override"
    assert api.call("POST", path, "anna", json={"reason": "new feed"})[0] == 403
    assert api.call("POST", path, "abe", json={})[0] == 400
    status, body = api.call("POST", path, "abe", json={"reason": "a feed with no traffic yet"})
    assert status == 200 and body["overridden_by"] == "abe"
    status, gates = api.call("GET", f"{VERSIONS}/{version}/gates", "anna")
    assert next(g for g in gates["gates"] if g["gate"] == "preview")["passed"]
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "rules.preview_override")).one()
    assert (event.actor, event.reason) == ("abe", "a feed with no traffic yet")


@pytest.mark.parametrize("role", sorted(ROLES))
def test_rollback_publishes_an_earlier_version_as_a_new_revision(api, engine, role):
    version = approved(api, engine)
    assert api.call("POST", f"{VERSIONS}/{version}/publish", "abe")[0] == 200
    first = api.call("GET", f"{VERSIONS}/1", "anna")[1]
    status, body = api.call("POST", "/api/rule-sets/rollback", ROLES[role],
                            json={"version": 1, "reason": "the new wording confused the desk"})
    if role not in ("approver", "admin"):
        assert status == 403, body
        return
    assert status == 201, body
    assert (body["status"], body["restores_version"], body["parent"]) == (
        "published", 1, version)
    assert body["version"] == version + 1
    assert body["content_hash"] == first["content_hash"]
    assert api.call("GET", f"{VERSIONS}/{version}", "anna")[1]["status"] == "superseded"
    assert RuleSetCache(engine, recheck_after=0).current().version == version + 1
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "rules.rollback")).one()
    assert event.reason == "the new wording confused the desk"
    assert event.after_hash == first["content_hash"]


def test_rollback_needs_a_reason_and_an_earlier_published_version(api, engine):
    assert api.call("POST", "/api/rule-sets/rollback", "abe",
                    json={"version": 1})[0] == 400
    status, body = api.call("POST", "/api/rule-sets/rollback", "abe",
                            json={"version": 1, "reason": "x"})
    assert status == 409 and "already" in body["reason"]
    version = draft(api)
    status, body = api.call("POST", "/api/rule-sets/rollback", "abe",
                            json={"version": version, "reason": "x"})
    assert status == 409 and "never published" in body["reason"]


def test_every_call_needs_a_token(api):
    for method, path in (("GET", VERSIONS), ("POST", VERSIONS), ("GET", f"{VERSIONS}/1"),
                         ("POST", "/api/rule-sets/rollback"), ("GET", "/api/rule-sets/diff")):
        assert api.call(method, path)[0] == 401


def test_the_diff_between_two_versions_names_the_route_table_that_changed(api):
    version = draft(api)
    assert retitle(api, version)[0] == 200
    status, body = api.call("GET", f"/api/rule-sets/diff?from=1&to={version}", "carl")
    assert status == 200 and (body["from"], body["to"]) == (1, version)
    assert "analytics" in str(body["changes"])
    assert api.call("GET", "/api/rule-sets/diff?from=1", "carl")[0] == 400


@pytest.mark.parametrize("role", sorted(ROLES))
def test_only_an_approver_or_admin_rejects(api, engine, role):
    version = in_review(api, engine)
    status, body = api.call("POST", f"{VERSIONS}/{version}/reject", ROLES[role],
                            json={"reason": "not yet"})
    assert status == (200 if role in ("approver", "admin") else 403), body


@pytest.mark.parametrize("role", sorted(ROLES))
def test_compliance_reads_the_audit_trail_and_checks_its_chain(api, engine, role):
    draft(api)
    status, page = api.call("GET", "/api/audit?action=rules.draft", ROLES[role])
    if role not in ("compliance", "admin"):
        assert status == 403
        return
    [event] = page["items"]
    assert (event["actor"], event["target_id"]) == ("anna", "2")
    assert event["after_hash"] and event["before_hash"]
    status, verdict = api.call("GET", "/api/audit/verify", ROLES[role])
    assert (status, verdict["ok"], verdict["problem"]) == (200, True, None)
    with Session(engine) as session, session.begin():
        session.get_one(AuditEvent, event["id"]).actor = "mallory"
    verdict = api.call("GET", "/api/audit/verify", ROLES[role])[1]
    assert (verdict["ok"], verdict["event_id"], verdict["kind"]) == (False, event["id"],
                                                                      "edited")


@pytest.mark.parametrize(("path", "kind"), [
    ("../../etc/routes.yaml", "routes"), ("rules/routes/x.yaml", "connection"),
    ("/rules/routes/x.yaml", "routes")])
def test_a_document_an_export_could_not_write_back_is_refused(api, path, kind):
    version = draft(api)
    status, body = api.call("PUT", f"{VERSIONS}/{version}/documents", "anna",
                            json={"path": path, "kind": kind, "data": {"id": "x", "rows": []}})
    assert status == 400 and "could not be exported" in body["reason"], body
    assert api.call("GET", f"{VERSIONS}/{version}/content", "anna")[1] == api.call(
        "GET", f"{VERSIONS}/1/content", "anna")[1]


def test_no_one_who_changed_a_version_may_approve_it(api, engine):
    """Issue 14, item 6: an admin could edit and submit an analyst's draft, then approve
    it alone. Everyone who changed its content is an editor; no editor approves."""
    version = draft(api, "anna")
    assert retitle(api, version, "adam", description="The admin's words.")[0] == 200
    assert api.call("POST", f"{VERSIONS}/{version}/submit", "adam")[0] == 200
    previewed(api, engine, version, "adam")
    status, body = api.call("POST", f"{VERSIONS}/{version}/approve", "adam")
    assert status == 403, body
    assert "changed" in body["reason"] and "Four-eyes" in body["hint"]
    shown = api.call("GET", f"{VERSIONS}/{version}", "carl")[1]
    assert shown["editors"] == ["anna", "adam"]
    status, body = api.call("POST", f"{VERSIONS}/{version}/approve", "abe")
    assert (status, body["approver"]) == (200, "abe")


def test_a_summary_alone_is_not_a_change_of_content(api, engine):
    version = draft(api, "anna")
    assert retitle(api, version, "anna")[0] == 200
    assert api.call("PUT", f"{VERSIONS}/{version}/content", "adam",
                    json={"summary": "Clearer words"})[0] == 200
    assert api.call("GET", f"{VERSIONS}/{version}", "carl")[1]["editors"] == ["anna"]


def test_a_draft_starts_from_a_template_and_waits_for_its_owners(api, engine):
    status, listed = api.call("GET", "/api/rule-sets/templates", "anna")
    assert status == 200
    lab = next(t for t in listed["templates"] if t["id"] == "lab-result-routing")
    values = {p["id"]: p["example"] for p in lab["parameters"]}
    version = draft(api, summary="Critical potassium to the cardiology pager",
                    template="lab-result-routing", values=values)
    status, content = api.call("GET", f"{VERSIONS}/{version}/content", "anna")
    paths = {doc["path"] for doc in content["documents"]}
    assert {"rules/routes/cardiology-pager.yaml", "rules/policies/cardiology-pager.yaml",
            "rules/tests/cardiology-pager.yaml", "catalog/connections/cardiology-pager.yaml",
            "catalog/connections/cardiology-review.yaml"} <= paths
    status, gates = api.call("GET", f"{VERSIONS}/{version}/gates", "anna")
    failed = {gate["gate"]: gate["findings"] for gate in gates["gates"] if not gate["passed"]}
    assert any("cardiology-pager" in finding and "business owner" in finding
               for finding in failed["catalog"])
    assert "tests" not in failed  # its rule tests pass from the start


def test_a_template_with_refused_values_names_each(api):
    body = {"summary": "Pager", "template": "lab-result-routing",
            "values": {"destination": "Cardiology Pager"}}
    status, answer = api.call("POST", VERSIONS, "anna", json=body)
    assert status == 400
    assert answer["problems"]["destination"].startswith("Use a short name")
    assert answer["problems"]["test_code"] == "Enter the test's LOINC code (OBX-3)"
    status, answer = api.call("POST", VERSIONS, "anna",
                              json={"summary": "x", "template": "no-such-template"})
    assert status == 400 and "no-such-template" in answer["reason"] + answer.get("hint", "")
