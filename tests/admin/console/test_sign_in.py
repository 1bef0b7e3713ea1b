"""Signing in to the console with a local password: the session cookie, CSRF, the
rate limits, the timeouts, the second factor and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.security import second_factor
from engine.security.sign_in import SignInLimits
from engine.security.users import UserStore
from engine.store.models import AuditEvent, User
from tests.admin.console.test_role_matrix import ALL

PASSWORD = "correct horse battery staple"
CHOSEN = "a passphrase only olive knows"
ACCESS = {
    # The last step of a sign-in whose password an admin set; a signed-in user is sent on.
    ("GET", "/sign-in/change-password"): ALL,
    ("POST", "/sign-in/change-password"): ALL,
}


@pytest.fixture
def olive_with_password(console):
    UserStore(console.engine).set_password("olive", PASSWORD, "test")
    return console


def _sign_in(browser, name="olive", password=PASSWORD, next_path=None):
    path = "/sign-in/" + (f"?next={next_path}" if next_path else "")
    return browser.post(path, {"username": name, "password": password})


def _actions(engine, action):
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                    .order_by(AuditEvent.id)))


def test_anonymous_visitors_are_sent_to_sign_in(console):
    response = console.anonymous().get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in/")


def test_a_right_password_signs_in_with_a_safe_cookie(olive_with_password):
    browser = olive_with_password.anonymous()
    response = _sign_in(browser, next_path="/account/")
    assert response.status_code == 302 and response.headers["Location"] == "/account/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "olive" in browser.text("/account/")
    [event] = _actions(olive_with_password.engine, "sign_in.success")
    assert event.actor == "olive" and event.detail["address"] == "127.0.0.1"


def test_the_cookie_is_secure_over_tls(olive_with_password):
    browser = olive_with_password.anonymous()
    page = browser.client.get("/sign-in/", base_url="https://localhost")
    token = page.get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    response = browser.client.post("/sign-in/", base_url="https://localhost",
                                   headers={"Referer": "https://localhost/sign-in/"},
                                   data={"username": "olive", "password": PASSWORD,
                                         "csrf_token": token})
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_wrong_password_is_refused_and_audited(olive_with_password):
    response = _sign_in(olive_with_password.anonymous(), password="not the password")
    assert response.status_code == 401
    assert "The user name or password is not right." in response.get_data(as_text=True)
    [event] = _actions(olive_with_password.engine, "sign_in.failure")
    assert event.actor == "anonymous" and event.target_id == "olive"
    assert "not the password" not in str(event.detail)


def test_an_unknown_name_gets_the_same_refusal(olive_with_password):
    response = _sign_in(olive_with_password.anonymous(), name="nobody")
    assert response.status_code == 401
    assert "The user name or password is not right." in response.get_data(as_text=True)


def test_a_form_post_without_its_csrf_token_is_refused(olive_with_password):
    response = olive_with_password.anonymous().post(
        "/sign-in/", {"username": "olive", "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert not _actions(olive_with_password.engine, "sign_in.success")


def test_failures_per_user_lock_the_name_for_the_window(olive_with_password):
    browser = olive_with_password.anonymous()
    for _ in range(5):
        assert _sign_in(browser, password="wrong password!").status_code == 401
    refused = _sign_in(browser)
    assert refused.status_code == 401
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)


def test_failures_per_address_stop_guessing_across_names(olive_with_password):
    sign_in = olive_with_password.app.extensions["switchboard.sign_in"]
    # A lower limit than the default 30, so the test does not hash 30 passwords.
    sign_in.limits = SignInLimits(failures_per_user=5, failures_per_address=4)
    browser = olive_with_password.anonymous()
    for number in range(sign_in.limits.failures_per_address):
        _sign_in(browser, name=f"guess{number}", password="wrong password!")
    refused = _sign_in(browser)
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(olive_with_password):
    moment = Clock()
    olive_with_password.app.extensions["switchboard.sign_in"].console_sessions._clock = moment
    return moment


def test_a_session_ends_after_the_idle_timeout(olive_with_password, clock):
    browser = olive_with_password.as_("olive")
    clock.now += timedelta(minutes=14)
    assert browser.get("/account/").status_code == 200
    clock.now += timedelta(minutes=14)
    assert browser.get("/account/").status_code == 200  # the visit above kept it alive
    clock.now += timedelta(minutes=15)
    assert browser.get("/account/").status_code == 302


def test_a_session_ends_after_the_absolute_timeout(olive_with_password, clock):
    browser = olive_with_password.as_("olive")
    started = clock.now
    for _ in range(12 * 6):
        clock.now += timedelta(minutes=10)
        response = browser.get("/account/")
        if response.status_code != 200:
            break
    assert response.status_code == 302
    assert clock.now - started == timedelta(hours=12)  # busy all along, ended at 12 h


def test_signing_out_ends_the_session_on_the_server(olive_with_password):
    browser = olive_with_password.as_("olive")
    browser.get("/account/")
    with browser.client.session_transaction() as cookie:
        stolen = dict(cookie)
    assert browser.post("/sign-in/out").status_code == 302
    replay = olive_with_password.anonymous()
    with replay.client.session_transaction() as cookie:
        cookie.update(stolen)
    assert replay.get("/account/").status_code == 302


def test_disabling_a_user_ends_their_session(olive_with_password):
    browser = olive_with_password.as_("olive")
    assert browser.get("/account/").status_code == 200
    UserStore(olive_with_password.engine).disable("olive", "test")
    assert browser.get("/account/").status_code == 302


def test_next_never_leads_off_the_site(olive_with_password):
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = _sign_in(olive_with_password.anonymous(), next_path=target)
        assert response.headers["Location"] == "/", target


def test_the_second_factor_is_asked_for_and_a_code_works_once(olive_with_password):
    console = olive_with_password
    browser = console.as_("olive")
    secret = second_factor.new_secret()
    sign_in = console.app.extensions["switchboard.sign_in"]
    moment = datetime.now(UTC).timestamp()
    sign_in._totp_clock = lambda: moment
    response = browser.post("/account/second-factor",
                            {"secret": secret, "code": second_factor.code_at(secret, moment)})
    assert "Your second factor is on" in browser.text("/account/")
    assert response.status_code == 302
    browser.post("/sign-in/out")

    fresh = console.anonymous()
    response = _sign_in(fresh)
    assert response.headers["Location"].startswith("/sign-in/second-factor")
    assert fresh.get("/account/").status_code == 302  # not in before the code
    assert "Type the code from your authenticator" in fresh.text("/sign-in/second-factor")
    assert fresh.post("/sign-in/second-factor", {"code": "000000"}).status_code == 200
    moment += 30
    code = second_factor.code_at(secret, moment)
    assert fresh.post("/sign-in/second-factor", {"code": code}).status_code == 302
    assert fresh.get("/account/").status_code == 200

    again = console.anonymous()
    _sign_in(again)
    again.get("/sign-in/second-factor")
    replayed = again.post("/sign-in/second-factor", {"code": code})
    assert "used already" in replayed.get_data(as_text=True)


def test_admins_must_enrol_a_second_factor_when_it_is_required(console):
    sign_in = console.app.extensions["switchboard.sign_in"]
    sign_in.admins_need_second_factor = True
    UserStore(console.engine).set_password("adam", PASSWORD, "test")
    browser = console.anonymous()
    response = _sign_in(browser, name="adam")
    assert response.headers["Location"].startswith("/sign-in/second-factor")
    page = browser.text("/sign-in/second-factor")
    assert "Admins must use a second factor" in page
    assert browser.get("/account/").status_code == 302


@pytest.fixture
def olive_given_a_password(console):
    """Olive's password as an admin sets it in the console: she must choose her own."""
    adam = console.as_("adam")
    assert adam.post("/users/user/olive/password",
                     {"password": PASSWORD, "password_again": PASSWORD}).status_code == 302
    return console


def _required(engine, name="olive"):
    with Session(engine) as session:
        return session.scalar(select(User.password_change_required).where(User.name == name))


def test_a_password_an_admin_set_must_be_changed_before_anything_else(olive_given_a_password):
    console = olive_given_a_password
    browser = console.anonymous()
    response = _sign_in(browser, next_path="/tasks/")
    assert response.headers["Location"] == "/sign-in/change-password?next=/tasks/"
    for path in ("/", "/tasks/", "/account/", "/users/", "/sign-in/", "/messages/"):
        elsewhere = browser.get(path)
        assert elsewhere.status_code == 302, path
        assert elsewhere.headers["Location"].startswith("/sign-in/change-password"), path
    page = browser.text("/sign-in/change-password?next=/tasks/")
    assert "Choose your own password" in page and "Sign out instead" in page
    assert browser.post("/account/tokens").headers["Location"].startswith(
        "/sign-in/change-password")
    assert len(UserStore(console.engine).tokens("olive")) == 1  # none issued on the way

    same = browser.post("/sign-in/change-password?next=/tasks/",
                        {"password": PASSWORD, "password_again": PASSWORD})
    assert same.status_code == 400
    assert "the new password is the same as the old one" in same.get_data(as_text=True)
    differ = browser.post("/sign-in/change-password?next=/tasks/",
                          {"password": CHOSEN, "password_again": CHOSEN + "!"})
    assert "The two passwords differ." in differ.get_data(as_text=True)
    assert _required(console.engine)

    done = browser.post("/sign-in/change-password?next=/tasks/",
                        {"password": CHOSEN, "password_again": CHOSEN})
    assert done.status_code == 302 and done.headers["Location"] == "/tasks/"
    assert browser.get("/tasks/").status_code == 200
    assert not _required(console.engine)
    [event] = _actions(console.engine, "user.password.change")
    assert (event.actor, event.target_id, event.detail) == ("olive", "olive",
                                                            {"was_required": True})
    assert _sign_in(console.anonymous()).status_code == 401  # the admin's is gone
    assert _sign_in(console.anonymous(), password=CHOSEN).headers["Location"] == "/"


def test_one_may_sign_out_instead_of_choosing(olive_given_a_password):
    browser = olive_given_a_password.anonymous()
    _sign_in(browser)
    browser.text("/sign-in/change-password")
    assert browser.post("/sign-in/out").headers["Location"] == "/sign-in/"
    assert browser.get("/sign-in/change-password").headers["Location"] == "/sign-in/"
    assert _required(olive_given_a_password.engine)


def test_the_password_is_chosen_after_the_second_factor(olive_given_a_password):
    console = olive_given_a_password
    secret = second_factor.new_secret()
    moment = datetime.now(UTC).timestamp()
    console.app.extensions["switchboard.sign_in"]._totp_clock = lambda: moment
    with Session(console.engine) as session, session.begin():
        session.execute(update(User).where(User.name == "olive").values(totp_secret=secret))
    browser = console.anonymous()
    assert _sign_in(browser).headers["Location"].startswith("/sign-in/second-factor")
    assert browser.get("/sign-in/change-password").headers["Location"].startswith(
        "/sign-in/second-factor")
    browser.text("/sign-in/second-factor")
    answer = browser.post("/sign-in/second-factor",
                          {"code": second_factor.code_at(secret, moment)})
    assert answer.status_code == 302
    assert browser.get("/account/").headers["Location"].startswith("/sign-in/change-password")
    browser.text("/sign-in/change-password")
    browser.post("/sign-in/change-password", {"password": CHOSEN, "password_again": CHOSEN})
    assert browser.get("/account/").status_code == 200


def test_a_password_set_at_the_command_line_asks_for_no_change(olive_with_password):
    response = _sign_in(olive_with_password.anonymous(), next_path="/tasks/")
    assert response.headers["Location"] == "/tasks/"
