"""Rule-set versions in the store: the first start imports the shipped configuration
as version 1, and engines run the newest published version."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from engine.journal import OwnerLookup, now_utc
from engine.rules.exception_policy import ErrorClass
from engine.rules.rule_set import RuleSet, compile_rule_set
from engine.rules.snapshot import content_hash, from_content, to_content
from engine.rules.source import read_rule_source
from engine.store.database import reader
from engine.store.models import CatalogConnection, RuleSetVersion

SYSTEM = "system"


def bootstrap(engine: Engine, root: Path) -> int | None:
    """Import ``root`` as published version 1 when the store has no version yet;
    returns the version created, or None when there already was one. The configuration
    must compile: a broken example is refused, not published."""
    source = read_rule_source(root)
    compile_rule_set(source)
    content = to_content(source)
    with Session(engine) as session, session.begin():
        if session.scalar(select(func.count()).select_from(RuleSetVersion)):
            return None
        moment = now_utc()
        version = RuleSetVersion(
            version=1, status="published", author=SYSTEM, approver=SYSTEM, content=content,
            content_hash=content_hash(content), created_at=moment, published_at=moment,
        )
        session.add(version)
        session.flush()
        for doc in source.of_kind("connection"):
            session.add(CatalogConnection(rule_set_version_id=version.id,
                                          connection_id=str(doc.data["id"]), document=doc.data))
        return 1


def published_version(engine: Engine) -> int | None:
    with Session(reader(engine)) as session:
        return session.scalar(
            select(func.max(RuleSetVersion.version)).where(RuleSetVersion.status == "published")
        )


@dataclass(frozen=True)
class Running:
    version: int
    rule_set: RuleSet


def load_published(engine: Engine) -> Running:
    """The newest published version, compiled."""
    with Session(reader(engine)) as session:
        row = session.scalars(
            select(RuleSetVersion).where(RuleSetVersion.status == "published")
            .order_by(RuleSetVersion.version.desc()).limit(1)
        ).first()
        if row is None:
            raise LookupError("no published rule-set version: run switchboard serve once")
        return Running(row.version, compile_rule_set(from_content(row.content)))


class RuleSetCache:
    """The compiled version an engine runs; ``current()`` recompiles only when a newer
    version has been published, and a message in flight keeps the one it started with."""

    def __init__(self, engine: Engine, recheck_after: float = 1.0) -> None:
        self._engine = engine
        self._running: Running | None = None
        # Asking the store on every pipeline pass cost a query per batch; a version
        # published now is picked up within ``recheck_after`` seconds.
        self._recheck_after = recheck_after
        self._checked_at = -math.inf

    def current(self) -> Running:
        now = time.monotonic()
        if self._running is not None and now - self._checked_at < self._recheck_after:
            return self._running
        newest = published_version(self._engine)
        if self._running is None or (newest is not None and newest != self._running.version):
            self._running = load_published(self._engine)
        self._checked_at = now
        return self._running


def exception_owner(rule_sets: RuleSetCache) -> OwnerLookup:
    """Who owns a failure on a connection, as its exception policy says, and the
    catalog's recovery procedure for it: what every exception item carries."""

    def owner(source: str, error_class: str) -> tuple[str, str | None]:
        rule_set = rule_sets.current().rule_set
        policy = rule_set.policies.resolve(source, ErrorClass(error_class))
        connection = rule_set.connections.get(source)
        procedure = connection.recovery_procedure if connection else None
        return str(policy.dead_letter.owner_role), procedure

    return owner
