"""``switchboard status``: one line per catalog connection, read from the store, so
it says the same whichever process (or none) is running. A feed counts what it sent
(received, routed, failed, held behind a failed message, waiting to be routed); a
destination what was sent to it (delivered, dead-lettered, held for a task, waiting);
both count their open exception items, and a destination shows its latest PHI-free
error."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from engine.backlog import OPEN_EXCEPTION, UNROUTED, WAITING_DELIVERY
from engine.chain_holds import HELD
from engine.store.database import reader
from engine.store.models import (
    CatalogConnection,
    Delivery,
    ExceptionItem,
    JournalEntry,
    RuleSetVersion,
)

__all__ = ["ConnectionStatus", "read_status"]


@dataclass(frozen=True)
class ConnectionStatus:
    connection: str
    direction: str
    received: int = 0
    routed: int = 0
    delivered: int = 0
    failed: int = 0
    held: int = 0
    waiting: int = 0
    oldest_waiting: datetime | None = None
    open_exceptions: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        view = dict(self.__dict__)
        view["oldest_waiting"] = self.oldest_waiting.isoformat() if self.oldest_waiting else None
        return view


def read_status(engine: Engine) -> list[ConnectionStatus]:
    """Every connection of the newest published version, and any other the store
    holds traffic for, sorted by id."""
    journal, deliveries = JournalEntry, Delivery
    with reader(engine).connect() as connection:
        newest = (select(RuleSetVersion.id).where(RuleSetVersion.status == "published")
                  .order_by(RuleSetVersion.version.desc()).limit(1).scalar_subquery())
        rows = {connection_id: ConnectionStatus(connection_id,
                                                str((document or {}).get("direction", "")))
                for connection_id, document in connection.execute(
                    select(CatalogConnection.connection_id, CatalogConnection.document)
                    .where(CatalogConnection.rule_set_version_id == newest))}

        def merge(name: str, **values: Any) -> None:
            rows[name] = replace(rows.get(name) or ConnectionStatus(name, "?"), **values)

        for source, status, count, oldest in connection.execute(
                select(journal.source, journal.status, func.count(),
                       func.min(journal.received_at))
                .group_by(journal.source, journal.status)):
            row = rows.get(source) or ConnectionStatus(source, "?")
            changes: dict[str, Any] = {"received": row.received + count}
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
        for destination, status, count, oldest in connection.execute(
                select(deliveries.destination, deliveries.status, func.count(),
                       func.min(deliveries.created_at))
                .group_by(deliveries.destination, deliveries.status)):
            row = rows.get(destination) or ConnectionStatus(destination, "?")
            if status == "delivered":
                merge(destination, delivered=row.delivered + count)
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
        latest = (select(deliveries.destination, func.max(deliveries.updated_at).label("at"))
                  .where(deliveries.last_error.is_not(None))
                  .group_by(deliveries.destination).subquery())
        for destination, error in connection.execute(
                select(deliveries.destination, deliveries.last_error)
                .join(latest, (latest.c.destination == deliveries.destination)
                      & (latest.c.at == deliveries.updated_at))
                .where(deliveries.last_error.is_not(None))):
            merge(destination, last_error=error)
    return [rows[name] for name in sorted(rows)]


def _earliest(first: datetime | None, second: datetime | None) -> datetime | None:
    present = [moment for moment in (first, second) if moment is not None]
    return min(present) if present else None
