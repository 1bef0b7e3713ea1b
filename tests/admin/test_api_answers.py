"""What the API answers, as its OpenAPI document states it (each case found by the
conformance run, tests/admin/test_api_conformance.py): a 405 names the methods allowed,
an error without a hint has none rather than a null one, null is not a value for a
member the document types, a whole number sent as 2.0 is taken, a name that the store
does not hold (an assignee, a task's state) is a conflict with what is stored, and
query parameters are read as the document bounds them."""

from __future__ import annotations

import pytest

from tests.queue_rows import delivery, entry, exception_item, referral_task


@pytest.mark.parametrize(("method", "path"), [
    ("DELETE", "/api/rule-sets/rollback"), ("TRACE", "/api/exceptions"),
    ("PUT", "/healthz"), ("POST", "/readyz")])
def test_a_method_a_route_does_not_take_is_answered_with_the_ones_it_does(api, method, path):
    response = api.client.open(path, method=method,
                               headers={"Authorization": f"Bearer {api.tokens['adam']}"})
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"] or "POST" in response.headers["Allow"]


def test_an_error_with_nothing_to_hint_carries_no_hint(api):
    status, body = api.call("GET", "/api/rule-sets/previews/999", as_user="anna")
    assert status == 404 and "no impact preview 999" in body["reason"]
    assert "hint" not in body


def test_null_is_no_value_for_a_member_the_document_types(api, engine):
    task_id, _ = referral_task(engine)
    for path, body in ((f"/api/tasks/{task_id}/complete", {"reason": None}),
                       ("/api/rule-sets/versions", {"summary": "x", "parent": None}),
                       ("/api/rule-sets/versions", {"summary": "x", "content": None}),
                       ("/api/rule-sets/versions", {"summary": "x", "values": [1]}),
                       ("/api/rule-sets/versions/1/previews", {"until": None})):
        status, answer = api.call("POST", path, as_user="adam", json=body)
        assert status == 400, (path, body, answer)


def test_a_whole_number_sent_as_a_float_is_taken(api):
    status, created = api.call("POST", "/api/rule-sets/versions", as_user="anna",
                               json={"summary": "A copy of version 1", "parent": 1.0})
    assert status == 201 and created["parent"] == 1
    status, preview = api.call("POST", f"/api/rule-sets/versions/{created['version']}"
                               "/previews", as_user="anna", json={"limit": 20.0})
    assert status == 202 and preview["selection"]["limit"] == 20


def test_content_must_be_shaped_as_an_export(api):
    for content in ({"documents": {}}, {"documents": [], "concept_maps": {"a.csv": 1}},
                    {"documents": [], "files": []}):
        status, body = api.call("POST", "/api/rule-sets/versions", as_user="anna",
                                json={"summary": "Import", "content": content})
        assert status == 400 and "as `rules export` writes it" in body["reason"], content


def test_an_assignee_or_a_state_the_store_does_not_hold_is_a_conflict(api, engine):
    journal_id, _ = entry(engine)
    item = exception_item(engine, journal_id, delivery(engine, journal_id))
    status, body = api.call("POST", f"/api/exceptions/{item}/assign", as_user="olive",
                            json={"assignee": "nobody-here"})
    assert status == 409 and "no such user: 'nobody-here'" in body["reason"]
    task_id, _ = referral_task(engine)
    status, body = api.call("POST", f"/api/tasks/{task_id}/assign", as_user="adam",
                            json={"assignee": "nobody-here"})
    assert status == 409 and body["hint"]
    # Its states are its route row's: one it does not name, or none, is a conflict.
    status, body = api.call("POST", f"/api/tasks/{task_id}/complete", as_user="cora",
                            json={"state": "maybe"})
    assert status == 409 and "'maybe' is not a state" in body["reason"]


@pytest.mark.parametrize("query", [
    "status=", "path=MSH-4&value=", "patient=&patient_authority=x"])
def test_a_message_search_leaves_out_what_it_does_not_search_by(api, query):
    status, body = api.call("GET", f"/api/messages?{query}", as_user="olive")
    assert status == 400 and "leave out what you do not search by" in body["reason"]


def test_query_numbers_are_bounded_as_the_document_says(api):
    # A page past the offset the store holds at the largest page, whatever per_page.
    status, _ = api.call("GET", f"/api/exceptions?per_page=1&page={(2**63 - 1) // 200 + 1}",
                         as_user="olive")
    assert status == 400
    for number in (2**63, -1, "1_0"):
        status, body = api.call("GET", f"/api/audit?id={number}", as_user="carl")
        assert status == 400 and "id must be an id" in body["reason"], number


def test_the_document_lists_the_draft_a_template_takes(api):
    status, document = api.call("GET", "/api/openapi.json")
    assert status == 200
    body = document["paths"]["/api/rule-sets/versions"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    templates = schema["properties"]["template"]["enum"]
    assert templates and len(schema["allOf"]) == len(templates)
    # A created draft's number feeds the operations on it: the stateful tests follow.
    links = document["paths"]["/api/rule-sets/versions"]["post"]["responses"]["201"]["links"]
    assert links["submit"] == {"operationId": "rules_api_submit_post",
                               "parameters": {"version": "$response.body#/version"}}


def test_an_edit_or_a_template_the_stored_item_does_not_take_is_a_conflict(api, engine):
    # A message exception: the edit must read as its source's format (HL7 v2 here).
    journal_id, _ = entry(engine, status="failed")
    item = exception_item(engine, journal_id)
    status, body = api.call("POST", f"/api/exceptions/{item}/reprocess", as_user="anna",
                            json={"body": "not an HL7 message"})
    assert status == 409 and "the edited message cannot be read" in body["reason"]
    # A template whose values, each well formed, name one connection file twice (as the
    # conformance run found): how they clash is the template's, as stored.
    values = {"coordination_queue": "a0", "destination": "a0", "destination_name": "u6pp",
              "receiving_facility": "0", "triage_queue": "a0", "unit": "0"}
    status, body = api.call("POST", "/api/rule-sets/versions", as_user="anna", json={
        "summary": "Referral intake", "template": "referral-intake", "values": values})
    assert status == 409 and "a second file at this path" in body["reason"], body
