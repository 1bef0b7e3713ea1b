"""Signing in and out, the second factor, choosing one's own password when an admin set
it, and a user's own account page: theme, password, second factor and their own API
tokens (which work for directory users too)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import abort, flash, redirect, request, session, url_for
from flask_admin import BaseView, expose

from admin.console.access import SESSION_KEY, ConsoleView, console_user, sign_in_service
from admin.services import services
from engine.security import passwords, second_factor
from engine.security.console_sessions import CHANGE_PASSWORD, ENROL, SECOND_FACTOR
from engine.security.roles import Role
from engine.security.users import UserError

ENROL_WHY = "Admins must use a second factor here before they can go on."


def _address() -> str:
    return request.remote_addr or "unknown"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an address elsewhere (an open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("console.index")


class SignInView(BaseView):
    """Open to everyone: the page that lets them in."""

    def __init__(self) -> None:
        super().__init__(name="Sign in", endpoint="sign_in", url="/sign-in")

    def is_visible(self) -> bool:
        return False

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        target = _safe_next(request.args.get("next"))
        user = console_user()
        if user is not None and user.signed_in:
            return redirect(target)
        refusal, username = None, ""
        if request.method == "POST":
            username = request.form.get("username", "")[:256]
            outcome = sign_in_service().password(username, request.form.get("password", ""),
                                                 _address())
            if outcome.token is not None:
                session.clear()  # a new cookie, so nothing from before sign-in carries on
                session[SESSION_KEY] = outcome.token
                if outcome.stage in (SECOND_FACTOR, ENROL):
                    return redirect(url_for(".second_factor", next=target))
                if outcome.stage == CHANGE_PASSWORD:
                    return redirect(url_for(".change_password", next=target))
                return redirect(target)
            refusal = outcome.refusal
        return self.render("console/sign_in.html", refusal=refusal, username=username,
                           next=request.args.get("next"),
                           directory=sign_in_service().directory is not None), \
            401 if refusal else 200

    @expose("/second-factor", methods=("GET", "POST"))
    def second_factor(self) -> Any:
        user = console_user()
        if user is None:
            return redirect(url_for(".index"))
        target = _safe_next(request.args.get("next"))
        if user.signed_in:
            return redirect(target)
        refusal = None
        enrolling = user.stage == ENROL
        secret = request.form.get("secret") if enrolling else None
        if request.method == "POST":
            code = request.form.get("code", "")
            if enrolling and secret and len(secret) <= 64:
                done = sign_in_service().enrol(user, secret, code, _address())
            else:
                done = sign_in_service().second_factor(user, code, _address())
            if done:
                return redirect(target)
            refusal = "That code is not right, or it was used already. Type the code " \
                      "your authenticator shows now."
        if enrolling:
            secret = secret or second_factor.new_secret()
            return self.render("console/second_factor.html", refusal=refusal, secret=secret,
                               uri=second_factor.provisioning_uri(secret, user.principal.name),
                               why=ENROL_WHY)
        return self.render("console/second_factor.html", refusal=refusal, secret=None)

    @expose("/change-password", methods=("GET", "POST"))
    def change_password(self) -> Any:
        """The last step of a sign-in whose password an admin set: the user chooses
        their own, so the one the admin knows is used only once."""
        user = console_user()
        if user is None:
            return redirect(url_for(".index"))
        target = _safe_next(request.args.get("next"))
        if user.signed_in:
            return redirect(target)
        if user.stage != CHANGE_PASSWORD:
            return redirect(url_for(".second_factor", next=target))
        errors: dict[str, str] = {}
        if request.method == "POST":
            errors = new_password_problems(request.form.get("password", ""),
                                           request.form.get("password_again", ""))
            if not errors:
                try:
                    services().users.change_own_password(
                        user.principal.name, request.form["password"],
                        keep_session=user.session_id)
                except UserError as exc:
                    errors["password"] = str(exc)
                else:
                    sign_in_service().password_chosen(user)
                    flash("Your new password is set. Use it from now on.", "success")
                    return redirect(target)
        return self.render("console/change_password.html", errors=errors,
                           name=user.shown_name), 400 if errors else 200

    @expose("/out", methods=("POST",))
    def sign_out(self) -> Any:
        sign_in_service().sign_out(session.get(SESSION_KEY), console_user())
        session.clear()
        flash("You have signed out.", "info")
        return redirect(url_for(".index"))


class AccountView(ConsoleView):
    """Any signed-in user's own account."""

    roles = frozenset(Role)

    def __init__(self) -> None:
        super().__init__(name="Your account", endpoint="account", url="/account")

    def is_visible(self) -> bool:
        return False

    @expose("/")
    def index(self) -> Any:
        me = _me()
        users = services().users
        found = next((u for u in users.list() if u.name == me), None)
        if found is None:
            abort(404)
        return self._page(found, {})

    def _page(self, found: Any, errors: dict[str, str]) -> Any:
        return self.render("console/account.html", account=found,
                           tokens=services().users.tokens(found.name),
                           new_token=session.pop("new_token", None),
                           enrolling=request.args.get("enrol") == "1",
                           secret=second_factor.new_secret(),
                           errors=errors), 400 if errors else 200

    @expose("/password", methods=("POST",))
    def password(self) -> Any:
        """A local user changes their own password: the current one, then the new one
        twice; their other console sessions end."""
        user = console_user()
        assert user is not None
        errors = new_password_problems(request.form.get("password", ""),
                                       request.form.get("password_again", ""))
        current = request.form.get("current_password", "")
        if not current:
            errors = {"current_password": "Type your current password.", **errors}
        if not errors:
            try:
                services().users.change_own_password(
                    user.principal.name, request.form["password"], current=current,
                    keep_session=user.session_id)
            except UserError as exc:
                field = "current_password" if "current" in exc.reason else "password"
                errors[field] = str(exc)
            else:
                flash("Your password is changed. Your other console sessions have ended.",
                      "success")
                return redirect(url_for(".index"))
        found = services().users.user(user.principal.name)
        return self._page(found, errors)

    @expose("/theme", methods=("POST",))
    def theme(self) -> Any:
        try:
            services().users.set_theme(_me(), request.form.get("theme", ""))
        except UserError as exc:
            flash(str(exc), "error")
        return redirect(_safe_next(request.form.get("back")))

    @expose("/second-factor", methods=("POST",))
    def enrol(self) -> Any:
        user = console_user()
        assert user is not None
        secret = request.form.get("secret", "")[:64]
        if sign_in_service().enrol(user, secret, request.form.get("code", ""), _address()):
            flash("Your second factor is on: from now on Switchboard asks for a code "
                  "after your password.", "success")
        else:
            flash("That code is not right. Add the key to your authenticator again and "
                  "type the code it shows now.", "error")
        return redirect(url_for(".index"))

    @expose("/tokens", methods=("POST",))
    def issue_token(self) -> Any:
        session["new_token"] = services().users.issue_token(_me(), _me())
        return redirect(url_for(".index"))

    @expose("/tokens/<id:token_id>/revoke", methods=("POST",))
    def revoke_token(self, token_id: int) -> Any:
        try:
            services().users.revoke_token(token_id, _me(), owner=_me())
            flash(f"Token {token_id} is revoked.", "success")
        except UserError as exc:
            flash(str(exc), "error")
        return redirect(url_for(".index"))


def new_password_problems(password: str, again: str) -> dict[str, str]:
    """What is wrong with a new password typed twice, by field: the same strength
    rules as every other password (engine.security.passwords)."""
    try:
        passwords.check_new(password)
    except passwords.PasswordRefused as exc:
        return {"password": str(exc)}
    if password != again:
        return {"password_again": "The two passwords differ. Type the same password twice."}
    return {}


def _me() -> str:
    user = console_user()
    if user is None:
        abort(401)
    return user.principal.name
