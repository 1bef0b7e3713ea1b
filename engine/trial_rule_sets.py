"""Rule-set versions compiled for the test panel, kept by content hash: a draft is
edited many times and tried after each edit, and compiling is most of a try's cost, so
each content is compiled once and a try reads only the version's state and hash."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.queues import NotFound
from engine.rules.field_sources import field_sources
from engine.rules.rule_set import RuleSet, RuleSetError, compile_rule_set
from engine.rules.snapshot import from_content
from engine.rules.source import RuleSource
from engine.store.database import reader
from engine.store.models import RuleSetVersion


@dataclass(frozen=True)
class Compiled:
    """One content, compiled: its rule set, or why it cannot be (``failure``)."""

    source: RuleSource
    rule_set: RuleSet | None
    failure: RuleSetError | None
    field_sources: Mapping[str, str]  # canonical path -> HL7 v2 path, for the words


@dataclass(frozen=True)
class TrialVersion:
    """A version as the panel needs it: who may change it, and its content compiled."""

    version: int
    status: str
    author: str
    content_hash: str
    compiled: Compiled


class TrialRuleSets:
    def __init__(self, engine: Engine, keep: int = 8) -> None:
        self._reads = reader(engine)
        self._keep = keep
        self._compiled: dict[str, Compiled] = {}
        self._lock = threading.Lock()

    def get(self, version: int) -> TrialVersion:
        """Version ``version`` compiled; NotFound when the store has none."""
        with Session(self._reads) as session:
            row = session.execute(
                select(RuleSetVersion.status, RuleSetVersion.author,
                       RuleSetVersion.content_hash)
                .where(RuleSetVersion.version == version)).first()
            if row is None:
                raise NotFound(f"no rule-set version {version}")
            compiled = self._cached(row.content_hash)
            if compiled is None:
                content = session.scalar(select(RuleSetVersion.content)
                                         .where(RuleSetVersion.version == version))
                compiled = self._compile(row.content_hash, dict(content or {}))
        return TrialVersion(version, row.status, row.author, row.content_hash, compiled)

    def _cached(self, key: str) -> Compiled | None:
        with self._lock:
            found = self._compiled.pop(key, None)
            if found is not None:
                self._compiled[key] = found  # the most recently used last
            return found

    def _compile(self, key: str, content: dict[str, object]) -> Compiled:
        source = from_content(content)
        sources = field_sources(doc.data for doc in source.of_kind("mapping"))
        try:
            compiled = Compiled(source, compile_rule_set(source), None, sources)
        except RuleSetError as error:
            compiled = Compiled(source, None, error, sources)
        with self._lock:
            self._compiled[key] = compiled
            while len(self._compiled) > self._keep:
                del self._compiled[next(iter(self._compiled))]
        return compiled
