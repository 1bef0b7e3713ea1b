"""Switchboard's web console: Flask-Admin (Bootstrap 4) screens for operators,
clinicians, compliance and admins, on the same services as the REST API.

Signing in makes a server-side console session (engine.security.console_sessions);
Flask's signed cookie carries only its token and the CSRF token. Every view checks
the signed-in user's roles on the server (admin.console.access), and every form post
carries a CSRF token (Flask-WTF's CSRFProtect; Flask-Admin's SecureForm is not used,
as the two clash). The REST API, ingest and health routes authenticate by bearer
token or not at all, carry no cookie, and so are exempt from CSRF.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from flask.sessions import SecureCookieSessionInterface
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_wtf.csrf import CSRFProtect

from admin.console import access, exception_words, list_links, task_reading, templates
from admin.services import draft_templates
from engine.security.console_sessions import ConsoleSessions, SessionPolicy
from engine.security.ldap_directory import Directory, LdapSettings
from engine.security.roles import Role
from engine.security.sign_in import SignIn

NAME = "Switchboard"
SECRET_KEY_FILE = "secret_key"
# Routes that never use the console's cookie: bearer-token API, ingest, health.
COOKIELESS_BLUEPRINTS = ("api", "audit_api", "exceptions_api", "tasks_api", "rules_api",
                         "openapi", "ingest", "health")

assets = Blueprint("console_assets", __name__, static_folder="static", template_folder="templates",
                   static_url_path="/console/static")


class _ConsoleCookie(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def mount(app: Flask) -> None:
    _configure_cookies(app)
    csrf = CSRFProtect(app)
    for name in COOKIELESS_BLUEPRINTS:
        csrf.exempt(app.blueprints[name])
    engine = app.extensions["switchboard"].engine
    policy = SessionPolicy(idle=timedelta(minutes=float(app.config["CONSOLE_IDLE_MINUTES"])),
                           absolute=timedelta(hours=float(app.config["CONSOLE_ABSOLUTE_HOURS"])))
    app.extensions["switchboard.sign_in"] = SignIn(
        engine, ConsoleSessions(engine, policy), directory=_directory(app),
        break_glass=app.config.get("LDAP_BREAK_GLASS_USER"),
        admins_need_second_factor=bool(app.config["CONSOLE_ADMINS_NEED_SECOND_FACTOR"]))
    app.register_blueprint(assets)
    console = Admin(app, name=NAME, url="/", theme=Bootstrap4Theme(
        base_template="console/base.html", fluid=True), index_view=_index_view(),
        csp_nonce_generator=lambda: g.get("csp_nonce", ""))
    for view in _views():
        console.add_view(view)
    app.before_request(_per_request)
    app.after_request(_security_headers)
    app.context_processor(_template_globals)
    app.add_template_filter(templates.moment)
    app.add_template_filter(templates.age)
    app.add_template_filter(templates.duration)
    app.add_template_filter(templates.period)
    app.add_template_filter(task_reading.flag_words_short)
    app.add_template_filter(templates.clock)
    app.add_template_filter(templates.until)
    app.add_template_test(templates.is_future, "future")
    app.add_template_filter(exception_words.error_words)
    app.add_template_filter(exception_words.owners)
    app.add_template_filter(exception_words.brief_steps)


def _configure_cookies(app: Flask) -> None:
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ.get("SWITCHBOARD_SECRET_KEY") or _secret_key(
            Path(app.instance_path))
    app.session_interface = _ConsoleCookie()
    app.config.update(SESSION_COOKIE_NAME="switchboard_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", WTF_CSRF_TIME_LIMIT=None,
                      WTF_CSRF_SSL_STRICT=True)


def _secret_key(instance: Path) -> str:
    """The key that signs console cookies: SWITCHBOARD_SECRET_KEY, else a random key
    kept in the instance folder (never in the repository), made on the first start."""
    path = instance / SECRET_KEY_FILE
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _directory(app: Flask) -> Directory | None:
    """The LDAP directory the configuration names; a bad setting stops the start with
    every problem named, rather than leaving sign-in half working."""
    settings = app.config.get("LDAP")
    return Directory(LdapSettings.from_mapping(settings)) if settings else None


def _index_view() -> Any:
    from admin.console.dashboard import DashboardView

    return DashboardView(name="Dashboard", endpoint="console", url="/")


def _views() -> list[Any]:
    """The console's screens, in menu order; each module is one screen."""
    from admin.console.account import AccountView, SignInView
    from admin.console.audit import AuditView
    from admin.console.catalog import CatalogView
    from admin.console.changes import ChangesView
    from admin.console.exceptions import ExceptionsView
    from admin.console.messages import MessagesView
    from admin.console.studio import StudioView
    from admin.console.tasks import TasksView
    from admin.console.test_panel import TestPanelView
    from admin.console.users import UsersView

    return [
        MessagesView(),
        ExceptionsView(),
        TasksView(),
        CatalogView(),
        StudioView(),
        ChangesView(),
        AuditView(),
        SignInView(),
        AccountView(),
        UsersView(),
        TestPanelView(),
    ]


def _template_globals() -> dict[str, Any]:
    return {"console_principal": access.signed_in, "console_theme": access.theme,
            "console_shown_name": access.shown_name,
            "holds_role": lambda role: access.holds(Role(role)),
            "message_search_url": templates.message_search_url,
            "studio_templates": lambda: list(draft_templates().values()), **list_links.LINKS}


def _per_request() -> Any:
    g.csp_nonce = secrets.token_urlsafe(16)
    if request.blueprint not in COOKIELESS_BLUEPRINTS:
        access.load_console_user()
        return access.password_change_first()
    return None


def _security_headers(response: Response) -> Response:
    if request.blueprint in COOKIELESS_BLUEPRINTS:
        return response
    nonce = g.get("csp_nonce", "")
    response.headers.setdefault("Content-Security-Policy", (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        # Bootstrap, select2 and htmx's indicators set style attributes.
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    # Console pages can show patients' data: no copy in any cache.
    response.headers.setdefault("Cache-Control", "no-store")
    return response
