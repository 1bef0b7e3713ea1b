"""Every console route, for every role and for nobody signed in: the page or action is
allowed, refused (403) or sends the visitor to sign in, exactly as the tables say. The
routes come from the app's url_map, so a route nobody put in a table fails here.

Each screen's test module keeps its own table, ``ACCESS``: (method, rule) -> role ->
"allow" or "deny". Nobody signed in is always sent to sign in, except on the sign-in
pages themselves. An allowed page answers 200 for an object that exists; an allowed
form post is neither refused nor sent to sign in (what it then does is the screen
tests' business)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.console import COOKIELESS_BLUEPRINTS
from engine.security.ldap_role_mappings import LdapRoleMappings
from engine.security.users import UserStore
from engine.store.models import ApiToken, User
from tests.queue_rows import PEOPLE, delivery, entry, exception_item, held_review
from tests.rule_versions import in_review

ALL = dict.fromkeys(PEOPLE.values(), "allow")
# Open to everyone, signed in or not.
PUBLIC = {("GET", "/sign-in/"), ("POST", "/sign-in/"), ("GET", "/sign-in/second-factor"),
          ("POST", "/sign-in/second-factor"), ("POST", "/sign-in/out")}
NAME_OF = {role: name for name, role in PEOPLE.items()}


def expected_access() -> dict[tuple[str, str], dict[str, str]]:
    """Every screen test module's ACCESS table, merged; a route in two tables fails."""
    table: dict[tuple[str, str], dict[str, str]] = {}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"tests.admin.console.{path.stem}")
        access: dict[tuple[str, str], dict[str, str]] | None = getattr(module, "ACCESS", None)
        if access is None:
            continue
        name = path.stem
        duplicated = set(access) & set(table)
        assert not duplicated, f"{name} lists routes listed elsewhere: {duplicated}"
        table.update(access)
    return table


def console_routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules()
            if rule.endpoint.split(".")[0] not in COOKIELESS_BLUEPRINTS
            and not rule.endpoint.endswith(".static")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_console_route_is_in_a_table(console):
    routes = console_routes(console.app)
    listed = set(expected_access()) | PUBLIC
    assert routes - listed == set(), "routes nobody listed"
    assert listed - routes == set(), "listed routes the app does not have"
    for route, roles in expected_access().items():
        assert set(roles) == set(PEOPLE.values()), (route, "lists every role")
        assert set(roles.values()) <= {"allow", "deny"}, route


@pytest.fixture
def objects(console) -> dict[str, Any]:
    """One of each thing a console URL can name, so an allowed page has something to show."""
    engine = console.engine
    journal_id, message_id = entry(engine, status="failed")
    delivery_id = delivery(engine, journal_id, status="dead")
    with Session(engine) as session:
        token_id = session.scalar(select(ApiToken.id).join(User).where(User.name == "olive"))
    item_id = exception_item(engine, journal_id, delivery_id)
    bulk = console.app.extensions["switchboard"].bulk
    return {
        "item_id": item_id,
        "job_id": bulk.start("retry", [item_id], "the matrix", "adam").id,
        # The abnormal-result review the tasks table's cells assume.
        "task_id": held_review(engine)[0],
        # Users' pages act on a user no signed-in browser here depends on.
        "message_id": message_id, "delivery_id": delivery_id, "token_id": token_id,
        "username": _spare_user(engine),
        "mapping_id": LdapRoleMappings(engine).add("cn=nurses", "clinician", "test").id,
        "connection_id": "ehr-adt-feed", "search_id": 1, "template_id": "lab-result-routing",
        "group_name": "cn=switchboard-operators,ou=groups,dc=example,dc=org",
        # A version in review, by an analyst, that every gate passes: the review pages
        # show it, and the rule studio and the test panel open it read-only.
        "version": in_review(engine),
        "concept_map": "administrative-sex",
    }


def _spare_user(engine) -> str:
    UserStore(engine).add("zed", "operator", "test")
    return "zed"


def _path(rule: str, objects: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[-1]
        assert name in objects, f"the matrix has no value for <{name}> in {rule}"
        return str(objects[name])

    return re.sub(r"<([^>]+)>", value, rule)


def _request(browser, method: str, path: str) -> Any:
    return browser.get(path) if method == "GET" else browser.post(path, {})


def test_every_role_gets_what_its_table_says(console, objects):
    failures = []
    for (method, rule), roles in sorted(expected_access().items()):
        path = _path(rule, objects)
        anonymous = _request(console.anonymous(), method, path)
        if not (anonymous.status_code == 302
                and anonymous.headers["Location"].startswith("/sign-in/")):
            failures.append(f"anonymous {method} {path}: {anonymous.status_code}")
        for role, verdict in roles.items():
            answer = _request(console.as_(NAME_OF[role]), method, path)
            to_sign_in = answer.status_code == 302 and answer.headers.get(
                "Location", "").startswith("/sign-in/")
            if verdict == "deny":
                ok = answer.status_code == 403
            elif method == "GET":
                ok = answer.status_code == 200 or (
                    answer.status_code == 302 and not to_sign_in)
            else:
                ok = answer.status_code not in (403, 500) and not to_sign_in
            if not ok:
                failures.append(f"{role} {method} {path}: {answer.status_code}, "
                                f"expected {verdict}")
    assert failures == []
