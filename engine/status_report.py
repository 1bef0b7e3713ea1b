"""``switchboard status``: one line per catalog connection, read from the store, so
it says the same whichever process (or none) is running. A feed counts what it sent
(received, routed, failed, held behind a failed message, waiting to be routed); a
destination what was sent to it (delivered, dead-lettered, held for a task, waiting);
both count their open exception items, and a destination shows its latest PHI-free
error, when it was, and whether a delivery has succeeded since (the connection has
recovered); a feed shows when it last received a message, a destination when it last
delivered one and how many of its waiting deliveries wait behind a dead letter of the
same patient (strict ordering holds them until the dead letter is dealt with)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from engine.backlog import OPEN_EXCEPTION, UNROUTED, WAITING_DELIVERY
from engine.chain_holds import HELD, held_by_dead_letter
from engine.store.database import reader
from engine.store.models import (
    CatalogConnection,
    Delivery,
    ExceptionItem,
    JournalEntry,
    RuleSetVersion,
)
from engine.task_outcome import SOURCE as OUTCOME_SOURCE

__all__ = ["ConnectionStatus", "read_status"]


@dataclass(frozen=True)
class ConnectionStatus:
    connection: str
    direction: str
    name: str | None = None
    received: int = 0
    routed: int = 0
    delivered: int = 0
    failed: int = 0
    held: int = 0
    waiting: int = 0
    oldest_waiting: datetime | None = None
    open_exceptions: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    error_current: bool = False
    last_delivered_at: datetime | None = None
    last_received_at: datetime | None = None
    behind_failure: int = 0

    @property
    def recovered(self) -> bool:
        """Whether the last error is history: every delivery that failed was delivered
        since, or a delivery succeeded after it."""
        if self.last_error is None:
            return False
        return not self.error_current or (
            self.last_delivered_at is not None and self.last_error_at is not None
            and self.last_delivered_at > self.last_error_at)

    def as_dict(self) -> dict[str, Any]:
        view = {key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in self.__dict__.items()}
        view["recovered"] = self.recovered
        return view


def read_status(engine: Engine) -> list[ConnectionStatus]:
    """Every connection of the newest published version, and any other the store
    holds traffic for, sorted by id."""
    journal, deliveries = JournalEntry, Delivery
    with reader(engine).connect() as connection:
        newest = (select(RuleSetVersion.id).where(RuleSetVersion.status == "published")
                  .order_by(RuleSetVersion.version.desc()).limit(1).scalar_subquery())
        rows = {connection_id: ConnectionStatus(connection_id,
                                                str((document or {}).get("direction", "")),
                                                (document or {}).get("name"))
                for connection_id, document in connection.execute(
                    select(CatalogConnection.connection_id, CatalogConnection.document)
                    .where(CatalogConnection.rule_set_version_id == newest))}

        def merge(name: str, **values: Any) -> None:
            rows[name] = replace(rows.get(name) or _unknown(name), **values)

        for source, status, count, oldest, latest_in in connection.execute(
                select(journal.source, journal.status, func.count(),
                       func.min(journal.received_at), func.max(journal.received_at))
                .group_by(journal.source, journal.status)):
            row = rows.get(source) or _unknown(source)
            changes: dict[str, Any] = {"received": row.received + count,
                                       "last_received_at": _latest(row.last_received_at,
                                                                   latest_in)}
            if status == "routed":
                changes["routed"] = row.routed + count
            elif status == "failed":
                changes["failed"] = row.failed + count
            elif status == HELD:
                changes["held"] = row.held + count
            elif status in UNROUTED:
                changes["waiting"] = row.waiting + count
                changes["oldest_waiting"] = _earliest(row.oldest_waiting, oldest)
            merge(source, **changes)
        for destination, status, count, oldest, delivered_at in connection.execute(
                select(deliveries.destination, deliveries.status, func.count(),
                       func.min(deliveries.created_at), func.max(deliveries.delivered_at))
                .group_by(deliveries.destination, deliveries.status)):
            row = rows.get(destination) or _unknown(destination)
            if status == "delivered":
                merge(destination, delivered=row.delivered + count,
                      last_delivered_at=delivered_at)
            elif status == "dead":
                merge(destination, failed=row.failed + count)
            elif status == "held":
                merge(destination, held=row.held + count)
            elif status in WAITING_DELIVERY:
                merge(destination, waiting=row.waiting + count,
                      oldest_waiting=_earliest(row.oldest_waiting, oldest))
        for connection_id, count in connection.execute(
                select(ExceptionItem.connection_id, func.count())
                .where(ExceptionItem.status.in_(OPEN_EXCEPTION),
                       ExceptionItem.connection_id.is_not(None))
                .group_by(ExceptionItem.connection_id)):
            if connection_id is not None:
                merge(connection_id, open_exceptions=count)
        # A delivered delivery keeps the error of its last failed attempt: that error is
        # history, shown only where nothing undelivered has one.
        for current in (False, True):
            for destination, error, at in _latest_errors(connection, current):
                merge(destination, last_error=error, last_error_at=at, error_current=current)
        for destination, count in connection.execute(
                select(deliveries.destination, func.count())
                .where(deliveries.status.in_(list(WAITING_DELIVERY)),
                       held_by_dead_letter(deliveries.__table__))
                .group_by(deliveries.destination)):
            merge(destination, behind_failure=count)
    return [rows[name] for name in sorted(rows)]


def _unknown(name: str) -> ConnectionStatus:
    """A row for traffic of no catalog connection: the work queue's task decisions,
    journaled to be routed on, or a connection the newest version no longer has."""
    if name == OUTCOME_SOURCE:
        return ConnectionStatus(name, "internal", "Task decisions")
    return ConnectionStatus(name, "?")


def _latest_errors(connection: Any, current: bool) -> Any:
    """Each destination's newest error among its undelivered deliveries (``current``)
    or its delivered ones, with when it was recorded."""
    deliveries = Delivery
    undelivered = deliveries.status != "delivered"
    which = undelivered if current else ~undelivered
    latest = (select(deliveries.destination, func.max(deliveries.updated_at).label("at"))
              .where(deliveries.last_error.is_not(None), which)
              .group_by(deliveries.destination).subquery())
    return connection.execute(
        select(deliveries.destination, deliveries.last_error, latest.c.at)
        .join(latest, (latest.c.destination == deliveries.destination)
              & (latest.c.at == deliveries.updated_at))
        .where(deliveries.last_error.is_not(None), which))


def _latest(first: datetime | None, second: datetime | None) -> datetime | None:
    present = [moment for moment in (first, second) if moment is not None]
    return max(present) if present else None


def _earliest(first: datetime | None, second: datetime | None) -> datetime | None:
    present = [moment for moment in (first, second) if moment is not None]
    return min(present) if present else None
