"""The task inbox (being built: the user's queues, claim, approve, reject, complete)."""

from __future__ import annotations

from typing import Any

from flask_admin import expose

from admin.console.access import ConsoleView
from engine.security.roles import Role


class TasksView(ConsoleView):
    roles = frozenset(Role)

    def __init__(self) -> None:
        super().__init__(name="Tasks", endpoint="tasks", url="/tasks")

    @expose("/")
    def index(self) -> Any:
        return self.render("console/placeholder.html")
