"""Prometheus metrics, by connection. One registry per process, served on /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter("switchboard_received", "Messages received", ["connection"],
                   registry=REGISTRY)
ACKNOWLEDGED = Counter("switchboard_acknowledged", "Messages acknowledged positively",
                       ["connection"], registry=REGISTRY)
REJECTED = Counter("switchboard_rejected", "Messages rejected (AR/CR or 4xx)", ["connection"],
                   registry=REGISTRY)
DUPLICATES = Counter("switchboard_duplicates", "Duplicates acknowledged, not reprocessed",
                     ["connection"], registry=REGISTRY)
CONFLICTS = Counter("switchboard_conflicts", "Same keys, different content", ["connection"],
                    registry=REGISTRY)
ROUTED = Counter("switchboard_routed", "Messages routed by the pipeline", ["connection"],
                 registry=REGISTRY)
EXCEPTIONS = Counter("switchboard_exceptions", "Exception items opened", ["connection"],
                     registry=REGISTRY)
QUEUE_DEPTH = Gauge("switchboard_queue_depth", "Journaled messages waiting for the pipeline",
                    registry=REGISTRY)
INGEST_TO_ACK = Histogram(
    "switchboard_ingest_to_ack_seconds", "From receipt to ACK built, journal commit included",
    ["connection"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
