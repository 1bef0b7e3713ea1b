"""HTTP (webhooks and plain REST endpoints) as a destination, registered as ``http``;
its client is shared with the FHIR sink."""

from __future__ import annotations

from engine.connectors.http.sink import HttpSink, http_sink
from engine.connectors.sink import register_sink

__all__ = ["HttpSink"]

register_sink("http", http_sink)
