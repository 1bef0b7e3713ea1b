"""The operators' dashboard, and everyone's start page: a tile per connection whose
numbers link to the message browser, the security events of the last day, and charts
of the last hour and day. Its parts refresh themselves through htmx."""

from __future__ import annotations

from typing import Any

from flask import redirect, url_for
from flask_admin import AdminIndexView, expose

from admin.console.access import deny, holds, signed_in
from admin.services import services
from engine.security.roles import Role
from engine.status_report import read_status

# Who sees the dashboard; everyone else starts at their task inbox.
DASHBOARD_ROLES = (Role.OPERATOR, Role.ANALYST, Role.APPROVER, Role.COMPLIANCE)


class DashboardView(AdminIndexView):
    def is_accessible(self) -> bool:
        return signed_in() is not None

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        return deny("dashboard")

    @expose("/")
    def index(self) -> Any:
        if not holds(*DASHBOARD_ROLES):
            return redirect(url_for("tasks.index"))
        return self.render("console/dashboard.html", tiles=read_status(services().engine))

    @expose("/tiles")
    def tiles(self) -> Any:
        if not holds(*DASHBOARD_ROLES):
            return deny("dashboard")
        return self.render("console/dashboard_tiles.html",
                           tiles=read_status(services().engine))
