"""Rule-set versions in the store: the first start imports the shipped configuration
as version 1, and engines run the newest published version.

A publish reaches running engines without a restart. On PostgreSQL it is announced
with NOTIFY in the publishing transaction, and each process LISTENs on one connection
of its own, so the next pipeline or delivery pass loads the new version at once. On
SQLite, which has no such channel, engines ask the store for the newest version at
most once a second. A message in flight keeps the version it started with: callers
take ``current()`` once per batch."""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.orm import Session

from engine.journal import CharsetLookup, OwnerLookup, Ownership, now_utc
from engine.rules import catalog_entry
from engine.rules.exception_policy import ErrorClass
from engine.rules.rule_set import RuleSet, compile_rule_set
from engine.rules.snapshot import content_hash, from_content, to_content
from engine.rules.source import read_rule_source
from engine.security.audit import AuditLog
from engine.security.task_access import TaskRules
from engine.store.database import reader
from engine.store.models import CatalogConnection, RuleSetVersion

SYSTEM = "system"
BOOTSTRAP_SUMMARY = "The shipped rules/ and catalog/, imported on the first start"
CHANNEL = "switchboard_rule_sets"
# With announcements, polling is only the safety net for a lost LISTEN connection.
POLL_SECONDS = {"sqlite": 1.0, "postgresql": 30.0}
log = logging.getLogger("switchboard.rules")


def announce_published(connection: Connection, version: int) -> None:
    """Tell running engines, once ``connection``'s transaction commits, that
    ``version`` is published (PostgreSQL only: NOTIFY is delivered at commit)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, :payload)"),
                           {"channel": CHANNEL, "payload": str(version)})


def bootstrap(engine: Engine, root: Path) -> int | None:
    """Import ``root`` as published version 1 when the store has no version yet;
    returns the version created, or None when there already was one. The configuration
    must compile: a broken example is refused, not published."""
    source = read_rule_source(root)
    compile_rule_set(source)
    content = to_content(source)
    audit = AuditLog(engine)
    with Session(engine) as session, session.begin():
        audit.lock(session)
        if session.scalar(select(func.count()).select_from(RuleSetVersion)):
            return None
        moment = now_utc()
        version = RuleSetVersion(
            version=1, status="published", author=SYSTEM, approver=SYSTEM, content=content,
            content_hash=content_hash(content), created_at=moment, published_at=moment,
            summary=BOOTSTRAP_SUMMARY, updated_at=moment, submitted_at=moment,
            approved_at=moment, published_by=SYSTEM,
        )
        session.add(version)
        session.flush()
        for doc in source.of_kind("connection"):
            session.add(CatalogConnection(rule_set_version_id=version.id,
                                          connection_id=str(doc.data["id"]), document=doc.data))
        session.flush()
        audit.record(session, SYSTEM, "rules.bootstrap", "rule_set_version", "1",
                     {"status": "published", "root": root.resolve().name}, before_hash=None,
                     after_hash=version.content_hash,
                     reason="system bootstrap: first start of an empty store")
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


class CompiledVersions:
    """Rule-set versions compiled on demand, by number, the few last asked for kept:
    the version a message was routed with explains it (a published version never
    changes; compiling one takes a noticeable part of a second)."""

    def __init__(self, engine: Engine, keep: int = 4) -> None:
        self._engine = engine
        self._keep = keep
        self._compiled: dict[int, Running] = {}
        self._lock = threading.Lock()

    def get(self, version: int) -> Running:
        """Version ``version``, compiled; LookupError when the store has none."""
        with self._lock:
            found = self._compiled.pop(version, None)
            if found is not None:
                self._compiled[version] = found  # the most recently used last
                return found
        with Session(reader(self._engine)) as session:
            content = session.scalar(
                select(RuleSetVersion.content).where(RuleSetVersion.version == version))
        if content is None:
            raise LookupError(f"no rule-set version {version}")
        running = Running(version, compile_rule_set(from_content(content)))
        with self._lock:
            self._compiled[version] = running
            while len(self._compiled) > self._keep:
                del self._compiled[next(iter(self._compiled))]
        return running


class RuleSetCache:
    """The compiled version an engine runs; ``current()`` recompiles only when a newer
    version has been published, and a message in flight keeps the one it started with."""

    def __init__(self, engine: Engine, recheck_after: float | None = None) -> None:
        self._engine = engine
        self._running: Running | None = None
        # Asking the store on every pipeline pass cost a query per batch; a version
        # published now is picked up within ``recheck_after`` seconds, or at once when
        # the store announces it.
        self._recheck_after = (POLL_SECONDS.get(engine.dialect.name, 1.0)
                               if recheck_after is None else recheck_after)
        self._checked_at = -math.inf
        self._announcements = Announcements.of(engine)
        self._heard = self._announcements.heard if self._announcements else 0

    def current(self) -> Running:
        now = time.monotonic()
        heard = self._announcements.heard if self._announcements else 0
        if (self._running is not None and heard == self._heard
                and now - self._checked_at < self._recheck_after):
            return self._running
        self._heard = heard
        newest = published_version(self._engine)
        if self._running is None or (newest is not None and newest != self._running.version):
            self._running = load_published(self._engine)
        self._checked_at = now
        return self._running


class Announcements:
    """One LISTEN connection per process and database, counting the publishes heard.
    It reconnects after a lost connection (meanwhile the caches poll), and closes once
    no cache uses it."""

    _lock: ClassVar = threading.Lock()
    _by_url: ClassVar[weakref.WeakValueDictionary[str, Announcements]] = (
        weakref.WeakValueDictionary())

    def __init__(self, url: str) -> None:
        self.heard = 0
        threading.Thread(target=_listen, args=(url, weakref.ref(self)),
                         name="rule-set-announcements", daemon=True).start()

    @classmethod
    def of(cls, engine: Engine) -> Announcements | None:
        if engine.dialect.name != "postgresql":
            return None
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with cls._lock:
            found = cls._by_url.get(url)
            if found is None:
                found = cls(url)
                cls._by_url[url] = found
            return found


def _listen(url: str, announcements: weakref.ref[Announcements]) -> None:
    import psycopg

    def heard() -> bool:
        listener = announcements()
        if listener is None:
            return False
        listener.heard += 1
        return True

    while announcements() is not None:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                # Whatever was published while nobody listened: look once more.
                if not heard():
                    return
                while announcements() is not None:
                    for _notice in connection.notifies(timeout=1.0):
                        if not heard():
                            return
        except psycopg.Error:
            if announcements() is None:
                return
            log.warning("rule-set announcements lost; listening again in 5 s")
            time.sleep(5.0)


def published_charset(session: Session, source: str) -> str | None:
    """``source``'s character set for HL7 v2 without MSH-18, in the newest published
    version's catalog (read from its entry, without compiling the version)."""
    document = session.scalar(
        select(CatalogConnection.document)
        .join(RuleSetVersion, RuleSetVersion.id == CatalogConnection.rule_set_version_id)
        .where(RuleSetVersion.status == "published", CatalogConnection.connection_id == source)
        .order_by(RuleSetVersion.version.desc()).limit(1))
    charset = (document or {}).get("charset")
    return str(charset) if charset else None


def published_task_rules(session: Session) -> TaskRules:
    """Who may work each task queue, as the newest published version's catalog says
    (read from its task-queue entries, without compiling the version): a publish
    changes it at once, on every process. Before any publish, only admins may."""
    return TaskRules.of(published_task_queues(session))


def published_task_queues(session: Session) -> list[catalog_entry.Connection]:
    """The task-queue entries of the newest published version's catalog, read without
    compiling the version; none before any publish."""
    newest = (select(RuleSetVersion.id).where(RuleSetVersion.status == "published")
              .order_by(RuleSetVersion.version.desc()).limit(1).scalar_subquery())
    documents = session.scalars(select(CatalogConnection.document)
                                .where(CatalogConnection.rule_set_version_id == newest))
    return [catalog_entry.Connection.from_dict(document) for document in documents
            if document.get("transport") == catalog_entry.Transport.TASK_QUEUE]


def published_names(session: Session, connection_ids: Iterable[str]) -> dict[str, str]:
    """The catalog names of these connections in the newest published version: what a
    person reads instead of an id ("Electronic health record", not ``ehr-fhir``)."""
    wanted = sorted(set(connection_ids))
    if not wanted:
        return {}
    newest = (select(RuleSetVersion.id).where(RuleSetVersion.status == "published")
              .order_by(RuleSetVersion.version.desc()).limit(1).scalar_subquery())
    rows = session.execute(select(CatalogConnection.connection_id, CatalogConnection.document)
                           .where(CatalogConnection.rule_set_version_id == newest,
                                  CatalogConnection.connection_id.in_(wanted)))
    return {connection_id: str(document["name"]) for connection_id, document in rows
            if document.get("name")}


def source_charset(rule_sets: RuleSetCache) -> CharsetLookup:
    """The character set each source's HL7 v2 bytes are in when MSH-18 names none, as
    the running version's catalog says."""

    def charset(source: str) -> str | None:
        return rule_sets.current().rule_set.charset_of(source)

    return charset


def exception_owner(rule_sets: RuleSetCache) -> OwnerLookup:
    """Who owns a failure on a connection, as its exception policy says, and the
    catalog's recovery procedure for it: what every exception item carries."""

    def owner(source: str, error_class: str) -> Ownership:
        rule_set = rule_sets.current().rule_set
        policy = rule_set.policies.resolve(source, ErrorClass(error_class))
        connection = rule_set.connections.get(source)
        escalation = policy.escalation
        return Ownership(
            str(policy.dead_letter.owner_role),
            connection.recovery_procedure if connection else None,
            escalation.after if escalation else None,
            str(escalation.notify_role) if escalation else None,
            bool(escalation and escalation.page_technical_owner))

    return owner
