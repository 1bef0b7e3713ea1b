"""MLLP (HL7 v2 over TCP): the listener source and the sender sink, both registered as
``mllp``, and a client for sending messages to any MLLP listener."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.connectors import register_source
from engine.connectors.mllp.listener import (
    SCHEMA,
    ListenerCounters,
    MllpListener,
    MllpListenerConfig,
)
from engine.connectors.mllp.sender import mllp_sender
from engine.connectors.sink import register_sink
from engine.ingest import Ingestor

__all__ = ["SCHEMA", "ListenerCounters", "MllpListener", "MllpListenerConfig"]


def listener_source(
    ingestor: Ingestor, source_id: str, config: Mapping[str, Any]
) -> MllpListener:
    """The ``mllp`` source factory: validate the config, build the listener."""
    return MllpListener(ingestor, source_id, MllpListenerConfig.from_mapping(config))


register_source("mllp", SCHEMA, listener_source)
register_sink("mllp", mllp_sender)
