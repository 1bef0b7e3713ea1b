"""Prometheus metrics, by connection. One registry per process, served on /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from engine.progress import PROGRESS

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter("switchboard_received", "Messages received", ["connection"],
                   registry=REGISTRY)
ACKNOWLEDGED = Counter("switchboard_acknowledged", "Messages acknowledged positively",
                       ["connection"], registry=REGISTRY)
REJECTED = Counter("switchboard_rejected", "Messages rejected (AR/CR or 4xx)", ["connection"],
                   registry=REGISTRY)
DUPLICATES = Counter("switchboard_duplicates", "Duplicates acknowledged, not reprocessed",
                     ["connection"], registry=REGISTRY)
CONFLICTS = Counter("switchboard_conflicts",
                    "Same keys, different content; a FHIR version older than the newest",
                    ["connection"], registry=REGISTRY)
ROUTED = Counter("switchboard_routed", "Messages routed by the pipeline", ["connection"],
                 registry=REGISTRY)
FAILED = Counter("switchboard_failed", "Messages the pipeline could not process",
                 ["connection"], registry=REGISTRY)
EXCEPTIONS = Counter("switchboard_exceptions", "Exception items opened", ["connection"],
                     registry=REGISTRY)
MLLP_CLOSED = Counter(
    "switchboard_mllp_closed", "MLLP connections ended, by why: peer_closed, idle, oversize, "
    "stopped, lost, slow_reader, refused, internal_error", ["connection", "reason"],
    registry=REGISTRY)
QUEUE_DEPTH = Gauge("switchboard_queue_depth", "Journaled messages waiting for the pipeline",
                    registry=REGISTRY)
INGEST_TO_ACK = Histogram(
    "switchboard_ingest_to_ack_seconds", "From receipt to ACK built, journal commit included",
    ["connection"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DELIVERED = Counter("switchboard_delivered", "Deliveries the destination took", ["connection"],
                    registry=REGISTRY)
RETRIED = Counter("switchboard_retried", "Failed deliveries scheduled for a retry",
                  ["connection"], registry=REGISTRY)
DEAD_LETTERED = Counter("switchboard_dead_lettered",
                        "Deliveries whose retries ran out, now exception items",
                        ["connection"], registry=REGISTRY)
HELD = Counter("switchboard_held", "Deliveries held for a review task", ["connection"],
               registry=REGISTRY)
RECEIVE_TO_DELIVERED = Histogram(
    "switchboard_receive_to_delivered_seconds", "From receipt to the destination's taking it",
    ["connection"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
_TASK_BUCKETS = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
RECEIVE_TO_TASK_CREATED = Histogram(
    "switchboard_receive_to_task_created_seconds", "From receipt to the task's creation",
    ["queue"], registry=REGISTRY, buckets=_TASK_BUCKETS)
RECEIVE_TO_TASK_COMPLETED = Histogram(
    "switchboard_receive_to_task_completed_seconds", "From receipt to the task's completion",
    ["queue"], registry=REGISTRY, buckets=_TASK_BUCKETS)
TASKS_CREATED = Counter("switchboard_tasks_created", "Tasks created", ["queue"],
                        registry=REGISTRY)
RULE_SET_VERSION = Gauge(
    "switchboard_rule_set_version", "The rule-set version each part of the engine runs",
    ["worker"], registry=REGISTRY)


# What a worker process reports to the process that serves /metrics: (metric, label,
# how many) for a counter, (metric, label, seconds) for a histogram, and ("progress",
# part, rule-set version) for a part's beat (engine.progress).
_REPORTED_COUNTERS = {
    "routed": ROUTED, "failed": FAILED, "exceptions": EXCEPTIONS, "held": HELD,
    "tasks_created": TASKS_CREATED, "delivered": DELIVERED, "retried": RETRIED,
    "dead_lettered": DEAD_LETTERED}
_REPORTED_HISTOGRAMS = {
    "receive_to_task_created": RECEIVE_TO_TASK_CREATED,
    "receive_to_delivered": RECEIVE_TO_DELIVERED}


def report(metric: str, label: str, value: float) -> None:
    """Count or observe ``metric`` for ``label`` in this process's registry."""
    if metric == "progress":
        PROGRESS.beat(label, int(value))
        RULE_SET_VERSION.labels(label).set(value)
        return
    histogram = _REPORTED_HISTOGRAMS.get(metric)
    if histogram is not None:
        histogram.labels(label).observe(value)
    else:
        _REPORTED_COUNTERS[metric].labels(label).inc(value)
