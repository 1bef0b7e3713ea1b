"""A sink that creates a task in the engine's own work queue (``tasks``), for
destinations that are people: a review queue, an outreach list.

The task carries the delivery's idempotency key under a unique constraint, so a
delivery sent again (its outcome was lost to a crash) finds its task instead of adding
a second one."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from engine import metrics
from engine.connectors import ConnectorError
from engine.connectors.sink import DeliveryFailed, Outbound
from engine.journal import now_utc
from engine.rules.catalog_entry import Connection, TaskQueueEndpoint
from engine.rules.exception_policy import ErrorClass
from engine.store.models import Task

TASK_KIND = "delivery"
TASK_MODE = "work"


class TaskQueueSink:
    def __init__(self, queue: str, engine: Engine) -> None:
        self.queue = queue
        self._engine = engine

    def send(self, outbound: Outbound) -> None:
        moment = now_utc()
        row = {
            "journal_id": outbound.journal_id, "queue": self.queue, "kind": TASK_KIND,
            "mode": TASK_MODE, "row_id": None, "status": "open", "assignee": None,
            "due_at": None, "payload": _payload(outbound), "created_at": moment,
            "completed_at": None, "idempotency_key": outbound.idempotency_key,
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(Task), row)
        except IntegrityError:
            return  # created by an earlier attempt whose outcome was not recorded
        except SQLAlchemyError as error:
            raise DeliveryFailed(ErrorClass.TRANSPORT_ERROR,
                                 f"the work queue's store refused the task "
                                 f"({type(error).__name__})") from None
        metrics.TASKS_CREATED.labels(self.queue).inc()
        if outbound.received_at is not None:
            metrics.RECEIVE_TO_TASK_CREATED.labels(self.queue).observe(
                max(0.0, (moment - outbound.received_at).total_seconds()))

    def close(self) -> None:
        """Nothing to release: the store's engine belongs to the caller."""


def _payload(outbound: Outbound) -> dict[str, Any]:
    """The minimised record the task shows; a body that is not JSON is kept as text."""
    if "json" in outbound.media_type:
        try:
            value = json.loads(outbound.body)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    return {"media_type": outbound.media_type, "body": outbound.body}


def task_queue_sink(connection: Connection, engine: Engine) -> TaskQueueSink:
    endpoint = connection.endpoint
    if not isinstance(endpoint, TaskQueueEndpoint):
        raise ConnectorError(f"{connection.id}: a task-queue sink needs an endpoint with a "
                             "queue")
    return TaskQueueSink(endpoint.queue, engine)
