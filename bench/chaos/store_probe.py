"""What the chaos run reads from the store, beside the processes it disturbs: the
deliveries in flight when a process is killed, the failed attempts a destination
outage has caused, and the dead letters an operator has to retry."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.store.database import open_engine
from engine.store.models import Delivery, ExceptionItem
from tests.delivery_config import SINK


def in_flight_keys(database_url: str) -> list[str]:
    """The idempotency keys of the deliveries in flight now (claimed, no outcome)."""
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(select(Delivery.idempotency_key)
                                           .where(Delivery.status == "in_flight")))
    finally:
        engine.dispose()


def delivered(database_url: str) -> int:
    """Deliveries to the sink with their outcome on record as delivered."""
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(
                select(func.count()).select_from(Delivery)
                .where(Delivery.destination == SINK, Delivery.status == "delivered")) or 0)
    finally:
        engine.dispose()


def failed_attempts(database_url: str, error_class: str = "transport_error") -> int:
    """Failed attempts recorded on the deliveries to the sink that wait for a retry."""
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(
                select(func.coalesce(func.sum(Delivery.attempts), 0))
                .where(Delivery.destination == SINK, Delivery.status == "retrying",
                       Delivery.error_class == error_class)) or 0)
    finally:
        engine.dispose()


def dead_letters(database_url: str, status: str | None = None) -> int:
    """Exception items for deliveries to the sink (of ``status`` when given)."""
    engine = open_engine(database_url)
    try:
        query = select(func.count()).select_from(ExceptionItem).where(
            ExceptionItem.connection_id == SINK, ExceptionItem.delivery_id.is_not(None))
        if status is not None:
            query = query.where(ExceptionItem.status == status)
        with engine.connect() as connection:
            return int(connection.scalar(query) or 0)
    finally:
        engine.dispose()
