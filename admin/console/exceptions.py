"""The exception queue (being built: grouped by signature, actions, bulk)."""

from __future__ import annotations

from typing import Any

from flask_admin import expose

from admin.console.access import ConsoleView
from engine.security.roles import Role


class ExceptionsView(ConsoleView):
    roles = frozenset({Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE})

    def __init__(self) -> None:
        super().__init__(name="Exceptions", endpoint="exceptions", url="/exceptions")

    @expose("/")
    def index(self) -> Any:
        return self.render("console/placeholder.html")
