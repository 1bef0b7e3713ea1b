"""The audit trail over REST reads through the same service as the console: filters by
time and sorting as well as by actor, action and object, refusals by name, and each
check of the chain recorded in the trail with its verdict."""

from __future__ import annotations

from urllib.parse import quote

from engine.security.audit_trail import VERIFY
from tests.queue_rows import PEOPLE

EVENTS = 1 + len(PEOPLE)  # the bootstrap, and each person added


def test_events_filter_by_time_and_sort(api):
    status, everything = api.call("GET", "/api/audit?sort=at&per_page=3", "carl")
    assert status == 200 and everything["total"] == EVENTS
    first, second = everything["items"][0], everything["items"][1]
    assert first["id"] < second["id"] and first["action"] == "rules.bootstrap"
    since = quote(second["at"])
    status, later = api.call("GET", f"/api/audit?sort=at&since={since}&actor=test", "carl")
    assert status == 200 and later["items"][0]["id"] == second["id"]
    status, before = api.call("GET", f"/api/audit?until={since}", "carl")
    assert [item["id"] for item in before["items"]] == [first["id"]]


def test_a_filter_or_sort_it_cannot_use_is_refused_with_the_reason(api):
    status, body = api.call("GET", "/api/audit?since=yesterday", "carl")
    assert status == 400 and "since must be an ISO 8601 time" in body["reason"]
    status, body = api.call("GET", "/api/audit?sort=-hash", "carl")
    assert status == 400 and body["hint"] == "Sort by: at, actor, action, object"


def test_each_check_over_rest_is_recorded_with_who_asked(api):
    status, verdict = api.call("GET", "/api/audit/verify", "carl")
    assert (status, verdict["ok"], verdict["checked"]) == (200, True, EVENTS)
    [event] = api.call("GET", f"/api/audit?action={VERIFY}", "carl")[1]["items"]
    assert (event["actor"], event["detail"]) == (
        "carl", {"ok": True, "checked": EVENTS, "anchor_head": event["id"] - 1})
    assert api.call("GET", "/api/audit/verify", "anna")[0] == 403
