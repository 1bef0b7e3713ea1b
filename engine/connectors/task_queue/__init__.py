"""The built-in work queue as a destination: a delivery becomes a task."""

from engine.connectors.sink import register_sink
from engine.connectors.task_queue.sink import TaskQueueSink, task_queue_sink

__all__ = ["TaskQueueSink"]

register_sink("task-queue", task_queue_sink)
