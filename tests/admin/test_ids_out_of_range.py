"""Integer ids the store cannot hold, on SQLite and PostgreSQL: a path id outside the
store's range is 404, a body or query id outside it is 400 naming the field, never a
500 from the driver (issue 13, defect 6)."""

from __future__ import annotations

import re

import pytest

# What the store holds: ids are BIGINT (SQLite's INTEGER is as wide); rule-set version
# numbers are INTEGER, 32 bits on PostgreSQL.
MAX_ID, MAX_VERSION = 2**63 - 1, 2**31 - 1
VERSION = "/api/rule-sets/versions/{n}"
# Every operation that takes an integer id in its path, with the largest id it can name.
PATH_OPERATIONS = [
    ("GET", "/api/tasks/{n}", MAX_ID), ("POST", "/api/tasks/{n}/assign", MAX_ID),
    ("POST", "/api/tasks/{n}/approve", MAX_ID), ("POST", "/api/tasks/{n}/reject", MAX_ID),
    ("POST", "/api/tasks/{n}/complete", MAX_ID), ("POST", "/api/tasks/{n}/unassign", MAX_ID),
    ("GET", "/api/exceptions/{n}", MAX_ID), ("POST", "/api/exceptions/{n}/assign", MAX_ID),
    ("POST", "/api/exceptions/{n}/resolve", MAX_ID),
    ("POST", "/api/exceptions/{n}/retry", MAX_ID),
    ("POST", "/api/exceptions/{n}/reprocess", MAX_ID),
    ("POST", "/api/exceptions/{n}/skip", MAX_ID),
    ("GET", VERSION, MAX_VERSION), ("GET", VERSION + "/content", MAX_VERSION),
    ("PUT", VERSION + "/content", MAX_VERSION), ("PUT", VERSION + "/documents", MAX_VERSION),
    ("DELETE", VERSION + "/documents?path=rules/x.yaml", MAX_VERSION),
    ("POST", VERSION + "/submit", MAX_VERSION), ("POST", VERSION + "/approve", MAX_VERSION),
    ("POST", VERSION + "/reject", MAX_VERSION), ("POST", VERSION + "/publish", MAX_VERSION),
    ("GET", VERSION + "/gates", MAX_VERSION), ("POST", VERSION + "/previews", MAX_VERSION),
    ("GET", "/api/rule-sets/previews/{n}", MAX_ID),
    ("POST", "/api/rule-sets/previews/{n}/override", MAX_ID),
]
# A body valid but for its id, so only the id can be what is refused.
PATH_BODIES = {
    "/assign": {"assignee": "olive"}, "/reject": {"reason": "not this one"},
    "/resolve": {"reason": "done"}, "/skip": {"reason": "done"},
    "/reprocess": {"body": "MSH|^~\\&|"},
    "/override": {"reason": "quiet week"}, "/content": {"summary": "another summary"},
    "/documents": {"path": "rules/x.yaml", "kind": "routes", "data": {}},
}
# Every operation that takes an integer id in its JSON body: (method, path, field, rest).
BODY_OPERATIONS = [
    ("POST", "/api/rule-sets/versions", "parent", {"summary": "a copy"}),
    ("POST", "/api/rule-sets/rollback", "version", {"reason": "back to the last one"}),
]
# Every integer id read from a query string: (path, field, the largest it can be).
QUERY_OPERATIONS = [
    ("/api/rule-sets/diff?from={n}&to=1", "from", MAX_VERSION),
    ("/api/rule-sets/diff?from=1&to={n}", "to", MAX_VERSION),
    ("/api/messages?page={n}", "page", MAX_ID), ("/api/exceptions?page={n}", "page", MAX_ID),
    ("/api/tasks?page={n}", "page", MAX_ID), ("/api/rule-sets/versions?page={n}", "page", MAX_ID),
    ("/api/audit?page={n}", "page", MAX_ID),
]
# Out of range for an id whose largest value is ``largest``.
OUT_OF_RANGE = {"just-above": lambda largest: largest + 1, "2**64": lambda _: 2**64,
                "10**30": lambda _: 10**30, "zero": lambda _: 0, "negative": lambda _: -1}


def _answer(api, method, path, body=None):
    status, answer = api.call(method, path, "adam", json=body)
    return status, answer.get("reason", "")


def _body_for(path):
    return next((body for end, body in PATH_BODIES.items() if end in path.split("?")[0]),
                None)


@pytest.fixture
def api_answering_500(api):
    """The app answering an unexpected error as 500, as it does in production, rather
    than raising it into the test: each operation's answer is seen."""
    api.client.application.config["PROPAGATE_EXCEPTIONS"] = False
    return api


def test_the_table_names_every_api_route_with_an_integer_id(api):
    """The console's routes with ids are covered by its own role matrix."""
    app = api.client.application
    integer_rules = {(method, rule.rule) for rule in app.url_map.iter_rules()
                     if re.search(r"<(int|id|version)[:(]", rule.rule)
                     and rule.rule.startswith("/api/")
                     for method in rule.methods - {"HEAD", "OPTIONS"}}
    listed = {(method, re.sub(r"\?.*", "", path)) for method, path, _ in PATH_OPERATIONS}
    assert len(integer_rules) == len(listed) == 25
    assert {(m, re.sub(r"<[^>]+>", "{n}", r)) for m, r in integer_rules} == listed


@pytest.mark.parametrize("beyond", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_a_path_id_out_of_range_is_not_found(api_answering_500, beyond):
    answers = {f"{method} {path}": _answer(api_answering_500, method,
                                           path.format(n=beyond(largest)), _body_for(path))[0]
               for method, path, largest in PATH_OPERATIONS}
    assert answers == {operation: 404 for operation in answers}


@pytest.mark.parametrize("beyond", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_a_body_id_out_of_range_is_refused_naming_the_field(api_answering_500, beyond):
    answers = {path: _answer(api_answering_500, method, path,
                             {**rest, field: beyond(MAX_VERSION)})
               for method, path, field, rest in BODY_OPERATIONS}
    assert {path: status for path, (status, _) in answers.items()} == {
        path: 400 for path in answers}
    for (_, path, field, _), (_, reason) in zip(BODY_OPERATIONS, answers.values(),
                                                 strict=True):
        assert f'"{field}"' in reason, (path, reason)


@pytest.mark.parametrize("beyond", [*OUT_OF_RANGE.values(), lambda _: "²", lambda _: "1e3",
                                    lambda _: ""],
                         ids=[*OUT_OF_RANGE.keys(), "superscript-two", "exponent", "empty"])
def test_a_query_id_out_of_range_is_refused_naming_the_field(api_answering_500, beyond):
    answers = {path: _answer(api_answering_500, "GET", path.format(n=beyond(largest)))
               for path, _, largest in QUERY_OPERATIONS}
    assert {path: status for path, (status, _) in answers.items()} == {
        path: 400 for path in answers}
    for (path, field, _), (_, reason) in zip(QUERY_OPERATIONS, answers.values(), strict=True):
        assert field in reason, (path, reason)


def test_the_largest_ids_are_looked_up_and_not_found(api_answering_500):
    """The edge of each range still reaches the store, which has no such row."""
    api = api_answering_500
    answers = {f"{method} {path}": _answer(api, method, path.format(n=largest),
                                           _body_for(path))[0]
               for method, path, largest in PATH_OPERATIONS}
    answers.update({path: _answer(api, method, path, {**rest, field: MAX_VERSION})[0]
                    for method, path, field, rest in BODY_OPERATIONS})
    answers["diff"] = _answer(api, "GET", f"/api/rule-sets/diff?from=1&to={MAX_VERSION}")[0]
    assert answers == {operation: 404 for operation in answers}
    far = api.call("GET", f"/api/messages?page={MAX_ID // 200}&per_page=200", "adam")
    assert far == (200, {"items": [], "page": MAX_ID // 200, "per_page": 200, "total": 0,
                         "total_exact": True})
