"""The users and roles screen over the test client: the list filtered, sorted and paged
on the server; adding a local user; a user's page (disable, enable, a new password, the
second factor, tokens shown once and revoked); the directory groups mapped to roles.
Every change is audited, and every route refuses everyone but admins."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.security import passwords
from engine.security.ldap_role_mappings import LdapRoleMappings
from engine.security.users import UserStore
from engine.store.models import AuditEvent, User
from tests.queue_rows import PEOPLE

ROLES = ("operator", "analyst", "compliance", "clinician", "approver", "admin", "registrar")
ADMINS_ONLY = {role: "allow" if role == "admin" else "deny" for role in ROLES}
ACCESS = {
    ("GET", "/users/"): ADMINS_ONLY,
    ("GET", "/users/add"): ADMINS_ONLY,
    ("POST", "/users/add"): ADMINS_ONLY,
    ("GET", "/users/user/<username>"): ADMINS_ONLY,
    ("POST", "/users/user/<username>/disable"): ADMINS_ONLY,
    ("POST", "/users/user/<username>/enable"): ADMINS_ONLY,
    ("POST", "/users/user/<username>/password"): ADMINS_ONLY,
    ("POST", "/users/user/<username>/display-name"): ADMINS_ONLY,
    ("POST", "/users/user/<username>/role"): ADMINS_ONLY,
    ("POST", "/users/user/<username>/second-factor/reset"): ADMINS_ONLY,
    ("POST", "/users/user/<username>/tokens"): ADMINS_ONLY,
    ("POST", "/users/user/<username>/tokens/<id:token_id>/revoke"): ADMINS_ONLY,
    ("GET", "/users/ldap-groups"): ADMINS_ONLY,
    ("POST", "/users/ldap-groups"): ADMINS_ONLY,
    ("POST", "/users/ldap-groups/<id:mapping_id>/remove"): ADMINS_ONLY,
}
PASSWORD = "correct horse battery staple"
CONFIRM = {"confirm": "yes"}  # what the confirm page's button sends
PARKING = "cn=parking-permits,ou=groups,dc=example,dc=org"
_TOKEN = re.compile(r'id="new-token">.*?<code class="text-break">(sb_[^<]+)</code>', re.S)
_ROW_NAMES = re.compile(r'<td><a href="/users/user/([^"]+)">')


def _events(engine, action):
    with Session(engine) as session:
        return [(e.actor, e.target_id, e.detail) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def _path(rule, token_id=1, mapping_id=1):
    return (rule.replace("<username>", "olive").replace("<id:token_id>", str(token_id))
            .replace("<id:mapping_id>", str(mapping_id)))


def _send(browser, method, path, data=None):
    if method == "GET":
        return browser.get(path)
    return browser.post(path, data or {})


def _user(engine, name):
    with Session(engine) as session:
        return session.scalar(select(User).where(User.name == name))


def _app_users(console) -> UserStore:
    """The web app's own user store: the one whose token-use flusher the fixture stops."""
    return console.app.extensions["switchboard"].users


def _listed(browser, query=""):
    return _ROW_NAMES.findall(browser.text(f"/users/{query}"))


def test_access_covers_every_route_of_the_screen(console):
    routes = {(method, rule.rule) for rule in console.app.url_map.iter_rules()
              if rule.endpoint.startswith("users.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(ACCESS)
    assert all(set(roles) == set(ROLES) for roles in ACCESS.values())


def test_everyone_but_admins_is_refused_every_route_and_the_refusal_audited(console):
    mapping = LdapRoleMappings(console.engine).add(PARKING, "operator", "test")
    token_id = UserStore(console.engine).tokens("olive")[0].id
    anonymous = console.anonymous()
    for (method, rule), allowed in ACCESS.items():
        path = _path(rule, token_id, mapping.id)
        response = _send(anonymous, method, path)
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/sign-in/")
        for name, role in PEOPLE.items():
            if allowed[role] == "deny":
                assert _send(console.as_(name), method, path).status_code == 403, (name, path)
    denied = _events(console.engine, "access.denied")
    assert len(denied) == 6 * len(ACCESS)
    assert {actor for actor, _, _ in denied} == set(PEOPLE) - {"adam"}
    # Nothing changed on the way.
    assert not _user(console.engine, "olive").disabled
    assert [m.id for m in LdapRoleMappings(console.engine).list()] == [mapping.id]
    assert not UserStore(console.engine).tokens("olive")[0].revoked_at


def test_the_menu_offers_users_to_admins_only(console):
    assert 'href="/users/"' in console.as_("adam").text("/account/")
    assert 'href="/users/"' not in console.as_("olive").text("/account/")


def test_the_list_shows_each_user_s_roles_source_state_factor_and_tokens(console):
    engine = console.engine
    with Session(engine) as session, session.begin():
        session.execute(update(User).where(User.name == "cora").values(totp_secret="A" * 32))
    UserStore(engine).set_password("abe", PASSWORD, "test")
    UserStore(engine).disable("rita", "test")
    page = console.as_("adam").text("/users/")
    assert _ROW_NAMES.findall(page) == sorted(PEOPLE)
    rows = {name: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for name, row in re.findall(r'<tr>\s*<td><a href="/users/user/([^"]+)">(.*?)</tr>',
                                        page, re.S)}
    assert rows["cora"] == "cora clinician Local, tokens only active on 1 never"
    assert rows["abe"] == "abe approver Local password active off 1 never"
    assert rows["rita"] == "rita registrar Local, tokens only disabled off 0 never"
    assert "Users 1&ndash;7 of 7." in page


@pytest.mark.parametrize(("query", "names"), [
    ("?role=operator", ["olive"]),
    ("?role=admin", ["adam"]),
    ("?state=disabled", ["rita"]),
    ("?state=active&role=registrar", []),
    ("?source=ldap", ["lee"]),
    ("?role=analyst", ["anna", "lee"]),  # lee's directory groups gave analyst too
    ("?name=a", ["abe", "adam", "anna", "carl", "cora", "rita"]),
    ("?sort=name&desc=1", ["rita", "olive", "lee", "cora", "carl", "anna", "adam", "abe"]),
    ("?sort=role", ["adam", "anna", "abe", "cora", "lee", "carl", "olive", "rita"]),
    ("?sort=state", ["abe", "adam", "anna", "carl", "cora", "lee", "olive", "rita"]),
])
def test_the_list_is_filtered_and_sorted_on_the_server(console, query, names):
    UserStore(console.engine).disable("rita", "test")
    with Session(console.engine) as session, session.begin():
        session.add(User(name="lee", role="clinician", extra_roles=["analyst"], source="ldap",
                         disabled=False, created_at=_user(console.engine, "adam").created_at))
    assert _listed(console.as_("adam"), query) == names


def test_the_list_comes_a_page_at_a_time_with_controls(console):
    users = UserStore(console.engine)
    for number in range(8):
        users.add(f"temp{number}", "clinician", "test")
    browser = console.as_("adam")
    first = browser.text("/users/?per_page=10")
    assert len(_ROW_NAMES.findall(first)) == 10
    assert "Users 1&ndash;10 of 15." in first and '<span class="sr-only">Page </span>2</a>' in first
    assert 'href="/users/?per_page=10&amp;page=2" rel="next"' in first
    second = _listed(browser, "?page=2&per_page=10")
    assert second == ["temp3", "temp4", "temp5", "temp6", "temp7"]
    beyond = browser.text("/users/?page=9&per_page=10")
    assert "No users on page 9; there are 15." in beyond


@pytest.mark.parametrize(("query", "problem"), [
    ("?role=root", "unknown role &#39;root&#39;"),
    ("?state=gone", "unknown state &#39;gone&#39;. Choose active or disabled"),
    ("?sort=password", "cannot sort users by &#39;password&#39;"),
    ("?per_page=7", "Show 10, 25, 50, 100 users a page."),
])
def test_a_list_that_cannot_be_made_says_why(console, query, problem):
    response = console.as_("adam").get(f"/users/{query}")
    assert response.status_code == 400
    assert problem in response.get_data(as_text=True)


def test_a_page_number_that_is_not_one_is_refused(console):
    assert console.as_("adam").get("/users/?page=x").status_code == 400


def test_an_admin_adds_a_local_user_and_sees_their_first_token_once(console):
    browser = console.as_("adam")
    response = browser.post("/users/add", {"name": "nina", "role": "clinician",
                                           "token": "yes"})
    assert response.status_code == 302 and response.headers["Location"] == "/users/user/nina"
    page = browser.text("/users/user/nina")
    [token] = _TOKEN.findall(page)
    assert "Added nina (clinician)." in page
    principal = _app_users(console).authenticate_token(token)
    assert principal is not None and {r.value for r in principal.roles} == {"clinician"}
    assert token not in browser.text("/users/user/nina")  # shown once
    [(actor, target, detail)] = _events(console.engine, "user.add")[-1:]
    assert (actor, target, detail["role"]) == ("adam", "nina", "clinician")
    assert "password" not in detail


def test_a_local_user_can_be_added_with_a_first_password(console):
    browser = console.as_("adam")
    response = browser.post("/users/add", {"name": "nina", "role": "operator",
                                           "password": PASSWORD, "password_again": PASSWORD})
    assert response.status_code == 302
    assert passwords.verify(_user(console.engine, "nina").password_hash, PASSWORD)
    assert _events(console.engine, "user.add")[-1][2]["password"] is True
    assert "Local password" in browser.text("/users/?name=nina")


@pytest.mark.parametrize(("form", "field", "error"), [
    ({"name": "Nina!", "role": "operator"}, "name", "user name &#39;Nina!&#39; is not allowed"),
    ({"name": "n" * 65, "role": "operator"}, "name", f"user name &#39;{'n' * 65}&#39; is not"),
    ({"name": "olive", "role": "operator"}, "name", "user &#39;olive&#39; already exists"),
    ({"name": "nina", "role": "root"}, "role", "unknown role &#39;root&#39;"),
    ({"name": "nina"}, "role", "role"),
    ({"name": "nina", "role": "operator", "password": "short", "password_again": "short"},
     "password", "the password is shorter than 12 characters"),
    ({"name": "nina", "role": "operator", "password": PASSWORD, "password_again": "other"},
     "password_again", "The two passwords differ."),
])
def test_a_new_user_form_says_what_is_wrong_beside_the_field(console, form, field, error):
    added = len(_events(console.engine, "user.add"))
    response = console.as_("adam").post("/users/add", form)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    found = re.search(rf'id="{field}-error">([^<]*)<', page)
    assert found and error in found.group(1), page
    assert len(_events(console.engine, "user.add")) == added
    assert _user(console.engine, "nina") is None
    # The keyboard lands on the field to fix (found in the admins' second check: after a
    # password error the focus went back to the top of the page).
    focused = re.findall(r'<input[^>]*\bautofocus\b[^>]*>', page)
    assert len(focused) == 1 and (f'id="{field}"' in focused[0]
                                  or ('id="role-' in focused[0] and field == "role"))


def test_a_new_user_has_no_role_until_one_is_chosen(console):
    """Found in the admins' second check: the form opened on Operator, so a nurse added
    in a hurry would have been made an operator."""
    page = console.as_("adam").text("/users/add")
    assert 'name="role"' in page and re.search(r'name="role"[^>]*checked', page) is None


def test_disabling_ends_the_user_s_session_and_enabling_lets_them_back(console):
    olive = console.as_("olive")
    assert olive.get("/tasks/").status_code == 200
    adam = console.as_("adam")
    response = adam.post("/users/user/olive/disable", CONFIRM)
    assert response.status_code == 302 and response.headers["Location"] == "/users/user/olive"
    assert "olive is disabled: their sessions have ended and 1 API token revoked." \
        in adam.text("/users/user/olive")
    assert olive.get("/tasks/").status_code == 302  # to sign in
    adam.post("/users/user/olive/enable")
    assert not _user(console.engine, "olive").disabled
    assert _events(console.engine, "user.disable") == [("adam", "olive", {"tokens_revoked": 1})]
    assert _events(console.engine, "user.enable") == [("adam", "olive", None)]


def test_an_admin_cannot_disable_themselves(console):
    adam = console.as_("adam")
    assert "You cannot disable yourself" in adam.text("/users/user/adam")
    adam.post("/users/user/adam/disable", CONFIRM)
    assert "you cannot disable yourself" in adam.text("/users/user/adam")
    assert not _user(console.engine, "adam").disabled
    assert _events(console.engine, "user.disable") == []


def test_a_state_change_that_cannot_be_made_is_said_on_the_user_s_page(console):
    adam = console.as_("adam")
    adam.post("/users/user/olive/enable")
    assert "user &#39;olive&#39; is not disabled" in adam.text("/users/user/olive")
    adam.post("/users/user/olive/second-factor/reset", CONFIRM)
    assert "user &#39;olive&#39; has no second factor" in adam.text("/users/user/olive")
    assert _events(console.engine, "user.enable") == []


def test_an_admin_sets_a_new_password(console):
    adam = console.as_("adam")
    response = adam.post("/users/user/olive/password",
                         {"password": PASSWORD, "password_again": PASSWORD})
    assert response.status_code == 302
    assert "olive has a new password" in adam.text("/users/user/olive")
    assert passwords.verify(_user(console.engine, "olive").password_hash, PASSWORD)
    assert _events(console.engine, "user.password") == [("adam", "olive",
                                                          {"change_required": True})]
    assert _user(console.engine, "olive").password_change_required


@pytest.mark.parametrize(("form", "field", "error"), [
    ({"password": "short", "password_again": "short"}, "password",
     "the password is shorter than 12 characters"),
    ({"password": "", "password_again": ""}, "password",
     "the password is shorter than 12 characters"),
    ({"password": PASSWORD, "password_again": PASSWORD + "!"}, "password_again",
     "The two passwords differ."),
])
def test_a_new_password_that_cannot_be_set_is_said_beside_the_field(console, form, field,
                                                                      error):
    response = console.as_("adam").post("/users/user/olive/password", form)
    assert response.status_code == 400
    found = re.search(rf'id="{field}-error">([^<]*)<', response.get_data(as_text=True))
    assert found and error in found.group(1)
    assert _user(console.engine, "olive").password_hash is None
    assert _events(console.engine, "user.password") == []


def test_a_directory_user_s_password_is_the_directory_s(console):
    with Session(console.engine) as session, session.begin():
        session.add(User(name="lee", role="clinician", source="ldap", disabled=False,
                         created_at=_user(console.engine, "adam").created_at))
    adam = console.as_("adam")
    assert "Set a new password" not in adam.text("/users/user/lee")
    response = adam.post("/users/user/lee/password",
                         {"password": PASSWORD, "password_again": PASSWORD})
    assert response.status_code == 302
    assert "user &#39;lee&#39; signs in through the directory. Change the password in the " \
           "directory" in adam.text("/users/user/lee")
    assert _events(console.engine, "user.password") == []


def test_an_admin_resets_a_lost_second_factor(console):
    with Session(console.engine) as session, session.begin():
        session.execute(update(User).where(User.name == "olive").values(totp_secret="A" * 32))
    olive = console.as_("olive")
    adam = console.as_("adam")
    assert "Reset olive's second factor" in adam.text("/users/user/olive")
    adam.post("/users/user/olive/second-factor/reset", CONFIRM)
    page = adam.text("/users/user/olive")
    assert "olive&#39;s second factor is removed" in page
    assert "Reset olive's second factor" not in page
    assert _user(console.engine, "olive").totp_secret is None
    assert olive.get("/tasks/").status_code == 302  # their session ended
    assert _events(console.engine, "user.second_factor.reset") == [("adam", "olive", None)]


def test_an_admin_issues_a_token_shown_once_and_revokes_it(console):
    adam = console.as_("adam")
    assert adam.post("/users/user/olive/tokens").status_code == 302
    [token] = _TOKEN.findall(adam.text("/users/user/olive"))
    assert token not in adam.text("/users/user/olive")
    users = _app_users(console)
    assert users.authenticate_token(token).name == "olive"
    newest = users.tokens("olive")[0]
    adam.post(f"/users/user/olive/tokens/{newest.id}/revoke", CONFIRM)
    assert f"Token #{newest.id} of olive is revoked." in adam.text("/users/user/olive")
    assert users.authenticate_token(token) is None
    assert users.authenticate_token(console.tokens["olive"]) is not None
    assert _events(console.engine, "token.issue") == [("adam", "olive",
                                                       {"token_id": newest.id})]
    assert _events(console.engine, "token.revoke") == [("adam", "olive",
                                                        {"token_id": newest.id})]


def test_a_token_is_revoked_only_from_its_owner_s_page(console):
    anna = UserStore(console.engine).tokens("anna")[0].id
    adam = console.as_("adam")
    adam.post(f"/users/user/olive/tokens/{anna}/revoke", CONFIRM)
    assert f"no token {anna} of olive" in adam.text("/users/user/olive")
    assert _app_users(console).authenticate_token(console.tokens["anna"]) is not None
    assert _events(console.engine, "token.revoke") == []


def test_a_disabled_user_is_given_no_token(console):
    adam = console.as_("adam")
    adam.post("/users/user/rita/disable", CONFIRM)
    assert "Issue a new token" not in adam.text("/users/user/rita")
    adam.post("/users/user/rita/tokens")
    assert "user &#39;rita&#39; is disabled" in adam.text("/users/user/rita")
    assert _events(console.engine, "token.issue") == []


def test_an_unknown_user_s_page_is_not_found(console):
    response = console.as_("adam").get("/users/user/ghost")
    assert response.status_code == 404
    assert "There is no user ghost." in response.get_data(as_text=True)


def test_an_admin_maps_a_directory_group_to_a_role_and_removes_it(console):
    adam = console.as_("adam")
    page = adam.text("/users/ldap-groups")
    assert "not configured" in page and "No groups are mapped here yet." in page
    response = adam.post("/users/ldap-groups", {"group": PARKING, "role": "operator"})
    assert response.status_code == 302
    page = adam.text("/users/ldap-groups")
    assert f"Members of {PARKING} now get the role operator when they next sign in." in page
    [mapping] = LdapRoleMappings(console.engine).list()
    assert (mapping.group, mapping.role) == (PARKING, "operator")
    adam.post(f"/users/ldap-groups/{mapping.id}/remove")
    assert "no longer get the role operator" in adam.text("/users/ldap-groups")
    assert LdapRoleMappings(console.engine).list() == []
    detail = {"group": PARKING, "role": "operator"}
    assert _events(console.engine, "ldap_mapping.add") == [("adam", str(mapping.id), detail)]
    assert _events(console.engine, "ldap_mapping.remove") == [("adam", str(mapping.id),
                                                               detail)]


@pytest.mark.parametrize(("form", "field", "error"), [
    ({"group": "", "role": "operator"}, "group", "the group is empty"),
    ({"group": "=parking", "role": "operator"}, "group",
     "&#39;=parking&#39; is neither a DN nor a cn"),
    ({"group": "parking-permits", "role": "root"}, "role", "unknown role &#39;root&#39;"),
])
def test_a_mapping_that_cannot_work_is_said_beside_the_field(console, form, field, error):
    response = console.as_("adam").post("/users/ldap-groups", form)
    assert response.status_code == 400
    found = re.search(rf'id="{field}-error">([^<]*)<', response.get_data(as_text=True))
    assert found and error in found.group(1)
    assert _events(console.engine, "ldap_mapping.add") == []


def test_removing_a_mapping_already_gone_says_so(console):
    adam = console.as_("adam")
    adam.post("/users/ldap-groups/99/remove")
    assert "no group mapping 99" in adam.text("/users/ldap-groups")


def test_a_new_user_gets_an_api_token_only_when_it_is_ticked(console):
    browser = console.as_("adam")
    form = browser.text("/users/add")
    assert "Also issue an API token (for scripts and other systems)" in form
    assert re.search(r'<input class="custom-control-input" type="checkbox" id="token" '
                     r'name="token" value="yes" aria-describedby', form)  # unticked
    assert browser.post("/users/add", {"name": "nina", "role": "clinician"}).status_code == 302
    page = browser.text("/users/user/nina")
    assert 'id="new-token"' not in page and "No tokens." in page
    assert UserStore(console.engine).tokens("nina") == []
    assert "token_id" not in _events(console.engine, "user.add")[-1][2]


def test_a_password_given_on_adding_is_to_be_changed_at_the_next_sign_in(console):
    browser = console.as_("adam")
    assert "They will choose their own at their next sign-in" in browser.text("/users/add")
    browser.post("/users/add", {"name": "nina", "role": "operator", "password": PASSWORD,
                                "password_again": PASSWORD})
    assert _user(console.engine, "nina").password_change_required
    page = browser.text("/users/user/nina")
    assert "They will choose their own password at their next sign-in." in page
    assert 'id="change-required"' in page
    assert _events(console.engine, "user.add")[-1][2]["change_required"] is True


def test_a_display_name_is_set_on_adding_and_on_the_user_s_page(console):
    browser = console.as_("adam")
    browser.post("/users/add", {"name": "nina", "role": "clinician",
                                "display_name": "Nina Patel, RN"})
    row = re.search(r'<a href="/users/user/nina">([^<]*)</a>\s*<small[^>]*>([^<]*)</small>',
                    browser.text("/users/?name=nina"))
    assert row and row.groups() == ("Nina Patel, RN", "nina")
    assert "<h1 class=\"h4 mb-3\">Nina Patel, RN</h1>" in browser.text("/users/user/nina")
    browser.post("/users/user/olive/display-name", {"display_name": "Olive Ortiz"})
    assert "olive is shown as Olive Ortiz." in browser.text("/users/user/olive")
    assert _user(console.engine, "olive").display_name == "Olive Ortiz"
    browser.post("/users/user/olive/display-name", {"display_name": "  "})
    assert _user(console.engine, "olive").display_name is None
    assert [detail for _, _, detail in _events(console.engine, "user.display_name")] == [
        {"display_name": "Olive Ortiz", "was": None},
        {"display_name": None, "was": "Olive Ortiz"}]


@pytest.mark.parametrize("path", ["/users/add", "/users/user/olive/display-name"])
def test_a_display_name_that_cannot_be_kept_is_said_beside_the_field(console, path):
    response = console.as_("adam").post(path, {"name": "nina", "role": "operator",
                                               "display_name": "N" * 101})
    assert response.status_code == 400
    found = re.search(r'id="display_name-error">([^<]*)<', response.get_data(as_text=True))
    assert found and "longer than 100 characters" in found.group(1)
    assert _user(console.engine, "nina") is None
    assert _user(console.engine, "olive").display_name is None


@pytest.mark.parametrize("path", ["/users/add", "/users/ldap-groups"])
def test_each_role_on_offer_says_what_it_may_do_and_where(console, path):
    page = console.as_("adam").text(path)
    labels = {value: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", label)).strip()
              for value, label in re.findall(
                  r'id="role-(\w+)" value="\w+"[^>]*>\s*<label[^>]*>(.*?)</label>', page, re.S)}
    assert set(labels) == set(ROLES)
    assert labels["clinician"] == (
        "Clinician — reviews clinical work that waits for a person; works tasks in: "
        "Care coordination queue, Nurse review queue, Referral intake queue.")
    assert labels["registrar"].endswith(
        "works tasks in: Identity review queue, Scheduling desk queue.")
    assert "sees tasks in: Care coordination queue" in labels["operator"]
    assert "managing users and roles" in labels["admin"]


@pytest.mark.parametrize(("path", "question", "outcome"), [
    ("/users/user/olive/disable", "Disable olive?",
     "olive is signed out everywhere at once, 1 API token of theirs stops working for "
     "good, and they cannot sign in until an admin enables them again."),
    ("/users/user/olive/second-factor/reset", "Reset olive&#39;s second factor?",
     "olive is signed out everywhere at once."),
    ("/users/user/olive/tokens/{token_id}/revoke", "Revoke token #{token_id} of olive?",
     "Every script or system that uses this token is refused from now on."),
])
def test_a_change_that_cannot_be_taken_back_at_once_asks_first(console, path, question,
                                                              outcome):
    with Session(console.engine) as session, session.begin():
        session.execute(update(User).where(User.name == "olive").values(totp_secret="A" * 32))
    token_id = UserStore(console.engine).tokens("olive")[0].id
    path = path.format(token_id=token_id)
    question = question.format(token_id=token_id)
    adam, olive = console.as_("adam"), console.as_("olive")
    response = adam.post(path)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="confirm-question">{question}</h1>' in page and outcome in page
    form = re.search(rf'<form method="post" action="{re.escape(path)}".*?</form>', page, re.S)
    assert form and 'name="csrf_token"' in form.group(0)
    assert '<input type="hidden" name="confirm" value="yes">' in form.group(0)
    assert re.search(r'<a class="[^"]*" href="/users/user/olive" id="cancel">Cancel</a>', page)
    # Nothing changed until it is confirmed.
    account = UserStore(console.engine).user("olive")
    assert not account.disabled and account.has_second_factor and account.active_tokens == 1
    assert olive.get("/tasks/").status_code == 200
    assert adam.post(path, {"confirm": "no"}).status_code == 200  # asks again
    assert adam.post(path, CONFIRM, csrf=False).status_code == 400  # CSRF kept
    assert UserStore(console.engine).user("olive") == account
    assert adam.post(path, CONFIRM).status_code == 302
    assert UserStore(console.engine).user("olive") != account


def test_the_confirm_page_of_an_unknown_user_is_not_found(console):
    assert console.as_("adam").post("/users/user/ghost/disable").status_code == 404


def test_an_admin_changes_a_user_s_role_on_their_page(console):
    """Found in the admins' second check: a nurse added as an operator could only be
    added again."""
    olive = console.as_("olive")
    assert olive.get("/exceptions/").status_code == 200
    adam = console.as_("adam")
    page = adam.text("/users/user/olive")
    assert re.search(r'id="role-operator"[^>]*checked', page)
    response = adam.post("/users/user/olive/role", {"role": "clinician"})
    assert response.status_code == 302
    assert "olive is now clinician" in adam.text("/users/user/olive")
    assert _user(console.engine, "olive").role == "clinician"
    assert _events(console.engine, "user.role")[-1][2] == {"role": "clinician",
                                                           "was": "operator"}
    assert olive.get("/exceptions/").status_code == 302  # signed out: to sign in again
    response = adam.post("/users/user/olive/role", {"role": "root"})
    assert response.status_code == 400
    assert re.search(r'id="role-error">[^<]*unknown role', response.get_data(as_text=True))
