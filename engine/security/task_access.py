"""Who may see and act on a task: the one rule the work queue applies for the REST API,
the command line and the console, and that the assignee check and the linter share.

Each task queue is a task-queue connection of the published catalog, whose
``task_access`` names the roles that ``see`` its tasks (list them, read what they are
about), read their ``payload`` (which may hold PHI) and ``act`` on them (assign,
approve, reject, complete); reading the payload or acting includes seeing. Admins may
do everything in every queue, also one the catalog does not hold; anyone else may do
nothing there. Pure: the catalog arrives parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from engine.queues import Forbidden
from engine.rules.catalog_entry import Connection, TaskAccess, TaskQueueEndpoint, Transport
from engine.security.roles import Role

SEE, PAYLOAD, ACT = "see", "payload", "act"
ACTIONS: Final = {
    "task.list": SEE,
    "task.show": SEE,
    "task.payload": PAYLOAD,
    "task.assign": ACT,
    "task.unassign": ACT,
    "task.approve": ACT,
    "task.reject": ACT,
    "task.complete": ACT,
}
"""Each action on a task, and the grant of its queue that allows it."""


@dataclass(frozen=True)
class TaskRules:
    """The access of every task queue the catalog holds, by the name its tasks carry."""

    queues: Mapping[str, TaskAccess] = field(default_factory=dict)

    @classmethod
    def of(cls, connections: Iterable[Connection]) -> TaskRules:
        """The rules ``connections`` set. A checkpoint's task carries its connection's
        id and a delivered task its endpoint's queue: both name the queue, the id first
        when two entries claim one name."""
        queues = [c for c in connections if c.transport is Transport.TASK_QUEUE]
        found: dict[str, TaskAccess] = {}
        for connection in queues:
            if isinstance(connection.endpoint, TaskQueueEndpoint):
                found[connection.endpoint.queue] = connection.task_access or TaskAccess()
        for connection in queues:
            found[connection.id] = connection.task_access or TaskAccess()
        return cls(found)

    def roles(self, queue: str, action: str) -> frozenset[Role]:
        """The roles that may take ``action`` on a task in ``queue``, admin included."""
        access = self.queues.get(queue, TaskAccess())
        grant = ACTIONS[action]
        granted = access.seeing if grant == SEE else getattr(access, grant)
        return frozenset(granted) | {Role.ADMIN}

    def may(self, roles: Iterable[Role], queue: str, action: str) -> bool:
        return bool(set(roles) & self.roles(queue, action))

    def check(self, roles: Iterable[Role], queue: str, action: str) -> None:
        """Raise :class:`~engine.queues.Forbidden` unless ``roles`` may take ``action``
        on a task in ``queue``."""
        if not self.may(roles, queue, action):
            names = ", ".join(sorted(r.value for r in self.roles(queue, action)))
            raise Forbidden(f"your role may not do this ({action}) in task queue {queue!r}; "
                            f"it is for: {names}",
                            hint="Ask an admin, or have the queue's catalog entry name "
                                 "your role in task_access")

    def visible(self, roles: Iterable[Role]) -> frozenset[str] | None:
        """The queues whose tasks ``roles`` may list; None for every queue (admins)."""
        held = set(roles)
        if Role.ADMIN in held:
            return None
        return frozenset(q for q in self.queues if self.may(held, q, "task.list"))
