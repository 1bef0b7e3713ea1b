"""Who is signed in to the console, and the server-side role check every console view
makes, for every page and every form post. A refusal is audited (a security event):
anonymous visitors are sent to sign in, signed-in users get 403."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, g, redirect, request, session, url_for
from flask_admin import BaseView
from sqlalchemy.orm import Session

from engine.security.audit import AuditLog
from engine.security.console_sessions import CHANGE_PASSWORD, ConsoleUser
from engine.security.identity import Principal
from engine.security.roles import Role
from engine.security.sign_in import SignIn

SESSION_KEY = "console_session"
ACCESS_DENIED = "access.denied"
# All a session waiting for its user to choose their own password may reach.
WHILE_CHANGING_PASSWORD = frozenset({"sign_in.change_password", "sign_in.sign_out"})


def sign_in_service() -> SignIn:
    found: SignIn = current_app.extensions["switchboard.sign_in"]
    return found


def load_console_user() -> None:
    token = session.get(SESSION_KEY)
    user = sign_in_service().console_sessions.resolve(token) if token else None
    if token and user is None:
        session.pop(SESSION_KEY, None)
    g.console_user = user


def password_change_first() -> Any:
    """Send a session whose user must choose their own password to that page, from
    every other console page (static files aside); None lets the request go on."""
    user = console_user()
    if user is None or user.stage != CHANGE_PASSWORD:
        return None
    endpoint = request.endpoint or ""
    if endpoint in WHILE_CHANGING_PASSWORD or endpoint.endswith("static"):
        return None
    return redirect(url_for("sign_in.change_password", next=_next_path()))


def shown_name() -> str | None:
    """The signed-in user as the navbar names them: display name, else login name."""
    user = console_user()
    return user.shown_name if user is not None and user.signed_in else None


def console_user() -> ConsoleUser | None:
    user: ConsoleUser | None = g.get("console_user")
    return user


def signed_in() -> Principal | None:
    user = console_user()
    return user.principal if user is not None and user.signed_in else None


def principal() -> Principal:
    """The signed-in user, for a view that has passed its access check."""
    found = signed_in()
    if found is None:
        abort(401)
    return found


def theme() -> str:
    user = console_user()
    return user.theme if user is not None else "light"


def holds(*roles: Role) -> bool:
    found = signed_in()
    return found is not None and bool(found.roles & ({Role.ADMIN, *roles}))


def deny(what: str) -> Any:
    """Refuse the request: to sign-in when nobody is signed in, else 403, audited."""
    found = signed_in()
    if found is None:
        return redirect(url_for("sign_in.index", next=_next_path()))
    audit_denial(found, what)
    abort(403, description="Your role may not open this page or do this. Ask an admin "
                           "for a role that may.")


def audit_denial(found: Principal, what: str) -> None:
    engine = current_app.extensions["switchboard"].engine
    with Session(engine) as db, db.begin():
        AuditLog(engine).record(db, found.name, ACCESS_DENIED, "console", what[:64],
                                {"path": request.path[:200], "method": request.method})


def audit_content_view(what: str, target: str, detail: dict[str, Any] | None = None,
                       bulk: bool = False) -> None:
    """A view of message content: always audited, as compliance reads it back."""
    engine = current_app.extensions["switchboard"].engine
    with Session(engine) as db, db.begin():
        AuditLog(engine).record(db, principal().name,
                                "content.view.bulk" if bulk else "content.view", what[:32],
                                target[:64], {**(detail or {}), "path": request.path[:200]})


def _next_path() -> str:
    path = request.full_path if request.query_string else request.path
    return path if request.method == "GET" else "/"


class ConsoleView(BaseView):
    """A console screen that only ``roles`` (and admins) may open; its menu entry shows
    only to them. Each action a screen offers checks its own permission as well."""

    roles: frozenset[Role] = frozenset()

    def is_accessible(self) -> bool:
        return holds(*self.roles)

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        return deny(self.endpoint)
