"""The operators' dashboard, and everyone's start page: a tile per connection whose
numbers link to the message browser, the security events of the last day, and charts
of the last hour and day. Its parts refresh themselves through htmx."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import abort, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from markupsafe import Markup

from admin.console.access import deny, holds, principal, signed_in
from admin.services import services
from engine.journal import now_utc
from engine.security.permissions import may
from engine.security.roles import Role
from engine.security.security_events import count_security_events
from engine.status_report import read_status
from engine.throughput import WINDOWS, Series, Throughput

# Who sees the dashboard; everyone else starts at their task inbox.
DASHBOARD_ROLES = (Role.OPERATOR, Role.ANALYST, Role.APPROVER, Role.COMPLIANCE)


class DashboardView(AdminIndexView):
    def is_accessible(self) -> bool:
        return signed_in() is not None

    def is_visible(self) -> bool:
        return holds(*DASHBOARD_ROLES)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        return deny("dashboard")

    @expose("/")
    def index(self) -> Any:
        if not holds(*DASHBOARD_ROLES):
            return redirect(url_for("tasks.index"))
        return self.render("console/dashboard.html", **self._tiles(), **self._charts())

    @expose("/tiles")
    def tiles(self) -> Any:
        if not holds(*DASHBOARD_ROLES):
            return deny("dashboard")
        return self.render("console/dashboard_tiles.html", **self._tiles())

    @expose("/charts")
    def charts(self) -> Any:
        if not holds(*DASHBOARD_ROLES):
            return deny("dashboard")
        return self.render("console/dashboard_charts.html", **self._charts())

    def _tiles(self) -> dict[str, Any]:
        day_ago = now_utc() - timedelta(days=1)
        # Feeds, then destinations, then the rest: a tile keeps its place as traffic comes.
        order = {"inbound": 0, "outbound": 1}
        tiles = sorted(read_status(services().reads),
                       key=lambda tile: (order.get(tile.direction, 2), tile.connection))
        roles = principal().roles
        # Where the counts may lead this user: a number they could not open is no link.
        reach = {"messages": may(roles, "message.read"),
                 "exceptions": may(roles, "exception.read")}
        return {"tiles": tiles, "reach": reach,
                "security": count_security_events(services().reads, since=day_ago)}

    def _charts(self) -> dict[str, Any]:
        window = request.args.get("window", "hour")
        if window not in WINDOWS:
            abort(400, description="Charts cover the last hour or the last day")
        connection = request.args.get("connection") or None
        throughput = Throughput(services().engine)
        series = throughput.series(window, connection)  # type: ignore[arg-type]
        return {"window": window, "connection": connection, "series": series,
                "chart_connections": throughput.connections("day"),
                "chart_data": _chart_data(series)}


def _chart_data(series: Series) -> Markup:
    """The points as JSON for charts.js, safe inside a <script> element."""
    label = "%H:%M" if series.window == "hour" else "%d %b %H:%M"
    data = {"labels": [point.start.strftime(label) for point in series.points],
            "points": [{"received": p.received, "routed": p.routed, "delivered": p.delivered,
                        "failed": p.failed, "rejected": p.rejected, "p50_ms": p.p50_ms,
                        "p99_ms": p.p99_ms, "queue_depth": p.queue_depth}
                       for p in series.points]}
    text = json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))
