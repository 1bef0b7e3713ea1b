"""The exception queue over REST on SQLite and PostgreSQL: every route needs a token
and a role, state conflicts answer 409 saying what to do instead, bad input 400,
unknown ids 404, and every action leaves an audit event with the chain intact."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.security.audit import AuditLog
from engine.store.models import AuditEvent
from tests.engine.test_exception_queue import held_chain
from tests.queue_rows import delivery, entry, exception_item

ROUTES = [("GET", "/api/exceptions"), ("GET", "/api/exceptions/signatures"),
          ("GET", "/api/exceptions/1"),
          ("POST", "/api/exceptions/1/assign"), ("POST", "/api/exceptions/1/resolve"),
          ("POST", "/api/exceptions/1/retry"), ("POST", "/api/exceptions/1/reprocess"),
          ("POST", "/api/exceptions/1/skip")]


def dead_item(engine, **options) -> int:
    journal_id, _ = entry(engine)
    return exception_item(engine, journal_id, delivery(engine, journal_id, **options))


def audit(engine) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        return [(e.actor, e.action, e.target_id) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.target_type == "exception")
            .order_by(AuditEvent.id))]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_token(api, method, path):
    status, body = api.call(method, path)
    assert status == 401 and "Bearer" in body["reason"]


@pytest.mark.parametrize(("method", "path", "allowed", "refused"), [
    ("GET", "/api/exceptions", ["olive", "anna", "carl", "adam"], ["cora", "abe"]),
    ("GET", "/api/exceptions/signatures", ["olive", "anna", "carl", "adam"],
     ["cora", "abe", "rita"]),
    ("GET", "/api/exceptions/{id}", ["olive", "anna", "carl"], ["cora"]),
    ("POST", "/api/exceptions/{id}/assign", [], ["anna", "carl", "cora", "abe"]),
    ("POST", "/api/exceptions/{id}/resolve", [], ["anna", "carl", "cora"]),
    ("POST", "/api/exceptions/{id}/retry", [], ["anna", "carl", "cora"]),
    ("POST", "/api/exceptions/{id}/skip", [], ["anna", "carl", "cora"]),
    ("POST", "/api/exceptions/{id}/reprocess", [], ["carl", "cora", "abe"]),
])
def test_roles_are_checked_on_the_server(api, engine, method, path, allowed, refused):
    url = path.format(id=dead_item(engine))
    for name in allowed:
        assert api.call(method, url, as_user=name)[0] == 200, name
    for name in refused:
        status, body = api.call(method, url, as_user=name, json={"assignee": "olive"})
        assert status == 403 and "operator" in body["reason"], name
    assert audit(engine) == []  # nothing refused was done


def test_list_keeps_its_shape_and_filters_by_assignee(api, engine):
    first = dead_item(engine)
    second = dead_item(engine)
    assert api.call("POST", f"/api/exceptions/{second}/assign", as_user="olive",
                    json={"assignee": "anna"})[0] == 200
    status, body = api.call("GET", "/api/exceptions?assignee=anna", as_user="carl")
    assert status == 200 and (body["total"], body["page"], body["per_page"]) == (1, 1, 50)
    assert body["items"][0]["id"] == second and body["items"][0]["status"] == "assigned"
    listed = api.call("GET", "/api/exceptions?status=open&per_page=1", as_user="olive")[1]
    assert [i["id"] for i in listed["items"]] == [first]
    assert api.call("GET", "/api/exceptions?page=x", as_user="olive")[0] == 400


def test_show_and_unknown_ids(api, engine):
    item_id = dead_item(engine, body='{"name": "SECRET-NAME"}')
    status, body = api.call("GET", f"/api/exceptions/{item_id}", as_user="anna")
    assert status == 200 and body["delivery"]["status"] == "dead"
    assert "SECRET-NAME" not in json.dumps(body)
    status, body = api.call("GET", "/api/exceptions/999", as_user="olive")
    assert status == 404 and body["reason"].startswith("no exception 999")
    assert api.call("POST", "/api/exceptions/999/retry", as_user="olive")[0] == 404


def test_assign_and_resolve_check_their_input(api, engine):
    item_id = dead_item(engine)
    url = f"/api/exceptions/{item_id}"
    for payload in ({}, {"assignee": ""}, {"assignee": 3}):
        status, body = api.call("POST", f"{url}/assign", as_user="olive", json=payload)
        assert status == 400 and '"assignee"' in body["reason"]
    status, body = api.call("POST", f"{url}/assign", as_user="olive", data=b"{not json")
    assert status == 400 and "JSON object" in body["reason"]
    status, body = api.call("POST", f"{url}/assign", as_user="olive",
                            json={"assignee": "cora"})
    assert status == 409 and "may not act" in body["reason"]
    assert api.call("POST", f"{url}/resolve", as_user="olive", json={})[0] == 400
    status, body = api.call("POST", f"{url}/resolve", as_user="olive",
                            json={"reason": "clinic confirmed receipt by phone"})
    assert status == 200 and body["status"] == "resolved"
    status, body = api.call("POST", f"{url}/resolve", as_user="olive", json={"reason": "x"})
    assert status == 409 and body["error"] == "Conflict"
    assert "no longer open" in body["reason"] and body["hint"]


def test_retry_and_its_conflicts(api, engine):
    item_id = dead_item(engine)
    status, body = api.call("POST", f"/api/exceptions/{item_id}/retry", as_user="olive")
    assert status == 200 and body["delivery"]["status"] == "pending"
    assert body["delivery"]["attempts"] == 0
    assert api.call("POST", f"/api/exceptions/{item_id}/retry", as_user="olive")[0] == 409
    journal_id, _ = entry(engine, status="routed")
    routed = exception_item(engine, journal_id)
    status, body = api.call("POST", f"/api/exceptions/{routed}/retry", as_user="adam")
    assert status == 409
    assert "was routed" in body["reason"]
    assert body["hint"] == "Use reprocess with an edited message, or resolve this item"
    assert audit(engine) == [("olive", "exception.retry", str(item_id))]
    assert AuditLog(engine).verify() == []


def test_reprocess_by_an_analyst_and_its_bad_input(api, engine):
    item_id = dead_item(engine)
    url = f"/api/exceptions/{item_id}/reprocess"
    # The body is well formed; that it must be JSON is the destination's, as stored.
    status, body = api.call("POST", url, as_user="anna", json={"body": "not json"})
    assert status == 409 and "not JSON" in body["reason"]
    status, body = api.call("POST", url, as_user="anna", json={"body": '{"a": 2}'})
    assert status == 200 and body["status"] == "reprocessed"
    assert body["replacement"]["status"] == "pending"
    assert body["delivery"]["status"] == "dead"  # the original, kept as it was
    journal_id, _ = entry(engine, status="failed")
    message_item = exception_item(engine, journal_id)
    status, body = api.call("POST", f"/api/exceptions/{message_item}/reprocess",
                            as_user="anna", json={"body": "PID|1||123"})
    assert status == 409 and "must start with an MSH segment" in body["reason"]
    assert audit(engine) == [("anna", "exception.reprocess", str(item_id))]
    assert AuditLog(engine).verify() == []


def test_skip_needs_a_reason_and_a_chain_held_back(api, engine):
    """Issue 14, item 2: skipping a dead letter that holds its chain lets the chain go
    on without it, for a reason kept on the item, audited; the item's view says how
    many deliveries wait behind it."""
    item_id, _, _ = held_chain(engine)
    url = f"/api/exceptions/{item_id}"
    assert api.call("GET", url, as_user="carl")[1]["waiting_behind"] == {"deliveries": 2}
    status, body = api.call("POST", f"{url}/skip", as_user="olive", json={})
    assert status == 400 and '"reason"' in body["reason"]
    status, body = api.call("POST", f"{url}/skip", as_user="olive",
                            json={"reason": "keyed in by the clinic"})
    assert status == 200 and body["status"] == "skipped"
    assert body["waiting_behind"] is None
    assert audit(engine) == [("olive", "exception.skip", str(item_id))]
    nothing_held = dead_item(engine)
    status, body = api.call("POST", f"/api/exceptions/{nothing_held}/skip", as_user="olive",
                            json={"reason": "x"})
    assert status == 409 and "holds nothing back" in body["reason"] and body["hint"]
    assert AuditLog(engine).verify() == []


def test_signatures_group_the_items_and_a_group_lists_its_own(api, engine):
    first, second, other = dead_item(engine), dead_item(engine), dead_item(engine)
    journal_id, _ = entry(engine, status="failed")
    message_item = exception_item(engine, journal_id)
    api.call("POST", f"/api/exceptions/{other}/resolve", as_user="olive",
             json={"reason": "done"})
    status, body = api.call("GET", "/api/exceptions/signatures?status=waiting",
                            as_user="carl")
    assert status == 200 and body["total"] == 2
    largest = body["items"][0]
    assert (largest["connection"], largest["error_class"], largest["count"]) == (
        "clinic-north", "transport_error", 2)
    assert largest["pattern"] == ("delivery to clinic-north failed after # attempts: "
                                  "connection refused")
    status, listed = api.call("GET", f"/api/exceptions?signature={largest['signature']}"
                              "&status=waiting&sort=id", as_user="anna")
    assert status == 200 and [i["id"] for i in listed["items"]] == [first, second]
    assert {i["signature"] for i in listed["items"]} == {largest["signature"]}
    smallest = api.call("GET", "/api/exceptions/signatures?sort=count&status=waiting",
                        as_user="olive")[1]["items"][0]
    assert smallest["count"] == 1 and smallest["error_class"] == "validation"
    assert [i["id"] for i in api.call(
        "GET", f"/api/exceptions?signature={smallest['signature']}", as_user="olive")[1][
        "items"]] == [message_item]
    for query in ("signatures?sort=size", "?sort=summary", "?signature=nope"):
        status, body = api.call("GET", f"/api/exceptions/{query}".replace("/?", "?"),
                                as_user="olive")
        assert status == 400 and body["hint"], query
