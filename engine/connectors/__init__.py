"""Connectors: the sources and sinks at the edge of the engine, found by name.

Each connector lives in its own folder (``engine/connectors/<system>/``) with the JSON
Schema of its config and one registration call, ``register_source("mllp", schema,
factory)``; :mod:`engine.connectors.all` imports every connector so that all of them
are registered. The service builds a source from a catalog entry with
``source_factory(name)(ingestor, source_id, config)``.

The ``Source`` contract:

- ``factory(ingestor, source_id, config)`` validates ``config`` against the schema
  (raising :class:`ConnectorError` with the path of the bad field) and returns the
  source without doing any I/O.
- ``await source.start()`` binds or connects; it raises when it cannot (the caller
  decides whether to retry). After it returns, every message the source receives goes
  through ``ingestor`` and is acknowledged only from what the journal committed.
- ``await source.stop(grace)`` stops taking new work, lets messages in flight be
  journaled and acknowledged for up to ``grace`` seconds, then closes everything it
  opened. It never raises and may be called more than once.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import SwitchboardError
from engine.ingest import Ingestor

__all__ = [
    "ConnectorError",
    "Source",
    "SourceFactory",
    "register_source",
    "source_factory",
    "source_names",
    "source_schema",
]


class ConnectorError(SwitchboardError):
    """A connector is unknown, registered twice, or configured wrongly."""


class Source(Protocol):
    """An inbound connector; see the module docstring for the contract."""

    async def start(self) -> None: ...

    async def stop(self, grace: float) -> None: ...


SourceFactory = Callable[[Ingestor, str, Mapping[str, Any]], Source]


@dataclass(frozen=True)
class _Registration:
    schema: Mapping[str, Any]
    factory: SourceFactory


_SOURCES: dict[str, _Registration] = {}


def register_source(name: str, schema: Mapping[str, Any], factory: SourceFactory) -> None:
    """Make a source connector known under ``name``; a second registration of the same
    name is a programming error, not an override."""
    if name in _SOURCES:
        raise ConnectorError(f"Connector {name!r} is registered twice",
                             hint="Give each connector folder its own name")
    _SOURCES[name] = _Registration(schema, factory)


def source_factory(name: str) -> SourceFactory:
    """The factory registered as ``name``; an unknown name suggests the closest one."""
    return _lookup(name).factory


def source_schema(name: str) -> Mapping[str, Any]:
    """The JSON Schema of the config of source ``name`` (for the GUI and the docs)."""
    return _lookup(name).schema


def source_names() -> list[str]:
    _load_all()
    return sorted(_SOURCES)


def _lookup(name: str) -> _Registration:
    _load_all()
    registration = _SOURCES.get(name)
    if registration is None:
        raise ConnectorError(_unknown(name))
    return registration


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(_SOURCES), n=1)
    if close:
        return f"No such connector: {name}. Did you mean {close[0]}?"
    return f"No such connector: {name}. Known connectors: {', '.join(sorted(_SOURCES))}"


def _load_all() -> None:
    # Imported here, not at the top: every connector module imports this one.
    importlib.import_module("engine.connectors.all")
