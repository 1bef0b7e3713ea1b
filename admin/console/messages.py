"""The message browser (being built: search, a message's page, content views,
reprocess)."""

from __future__ import annotations

from typing import Any

from flask_admin import expose

from admin.console.access import ConsoleView
from engine.security.roles import Role


class MessagesView(ConsoleView):
    roles = frozenset({Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE})

    def __init__(self) -> None:
        super().__init__(name="Messages", endpoint="messages", url="/messages")

    @expose("/")
    def index(self) -> Any:
        return self.render("console/placeholder.html")
