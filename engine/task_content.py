"""What a task shows of its payload: the part its queue's data scope allows, as the
published catalog sets that scope now (the catalog scope mechanism of
:mod:`engine.rules.minimise`, applied to the queue's task-queue connection).

A checkpoint's payload was projected onto its queue's scope when the task was made;
a later publish may narrow the scope, and minimum necessary means what the queue may
hold now, so a registration queue shows demographics and never results. A queue
whose catalog entry sets no scope holds no patient data (escalations name an
exception item) and one the catalog no longer holds is for admins alone: both show
their payload as it was made. The task's own decision is never cut. Pure: the
catalog arrives parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.rules.catalog_entry import Connection, TaskQueueEndpoint, Transport
from engine.rules.minimise import Scope, compile_scope

DECISION = "decision"
"""The payload key the work queue keeps a task's decision under."""


@dataclass(frozen=True)
class QueueScopes:
    """The data scope of every task queue the catalog holds, by the name its tasks
    carry (a connection's id, or its endpoint's queue; the id first, as for access)."""

    scopes: Mapping[str, Scope] = field(default_factory=dict)

    @classmethod
    def of(cls, connections: Iterable[Connection]) -> QueueScopes:
        queues = [c for c in connections if c.transport is Transport.TASK_QUEUE]
        found: dict[str, Scope] = {}
        for connection in queues:
            if isinstance(connection.endpoint, TaskQueueEndpoint) and connection.data_scope:
                found[connection.endpoint.queue] = compile_scope(list(connection.data_scope))
        for connection in queues:
            if connection.data_scope:
                found[connection.id] = compile_scope(list(connection.data_scope))
            else:
                found.pop(connection.id, None)
        return cls(found)

    def cut(self, queue: str, payload: Mapping[str, Any] | None) -> dict[str, Any]:
        """``payload`` as ``queue``'s scope lets it be shown, with its decision."""
        whole = dict(payload or {})
        scope = self.scopes.get(queue)
        if scope is None:
            return whole
        shown = scope.project(whole)
        if DECISION in whole:
            shown[DECISION] = whole[DECISION]
        return shown
