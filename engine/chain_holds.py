"""Strict ordering behind a failure: on a destination whose catalog entry says
``ordering: strict`` (the default), a dead letter holds the later deliveries of its
(destination, patient) until an operator retries, reprocesses, skips or resolves its
exception item. Otherwise that retry would send the admission after the discharge that
followed it. Other patients, and the patient's deliveries to other destinations, keep
flowing. Under ``skip_dead`` no hold is made, and the next delivery goes on.

A hold is a row in ``chain_holds`` while it is in force, and none once it ends: the
outbox's claim probes it by index, however many deliveries wait, and parks what it
finds behind it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Exists, Table, delete, func, insert, select, tuple_
from sqlalchemy.orm import Session

from engine.rules.catalog_entry import Ordering
from engine.rules.rule_set import RuleSet
from engine.store.models import ChainHold, Delivery, ExceptionItem

DELIVERY = "delivery"
_NOT_ENDED = ("pending", "retrying", "in_flight", "held")

_HOLDS: Table = ChainHold.__table__  # type: ignore[assignment]
_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]


def strict(rule_set: RuleSet, connection_id: str) -> bool:
    """Whether a failure on ``connection_id`` holds what follows it: the catalog entry's
    ordering, strict for a connection the catalog does not know."""
    connection = rule_set.connections.get(connection_id)
    return connection is None or connection.ordering is Ordering.STRICT


# ---- deliveries ------------------------------------------------------------------------

def held_by_dead_letter(deliveries: Any) -> Exists:
    """Whether a dead letter holds the chain of ``deliveries`` (the table, or an alias
    of it) at an earlier place: the claim's probe, one index lookup."""
    return select(_HOLDS.c.id).where(
        _HOLDS.c.kind == DELIVERY, _HOLDS.c.connection_id == deliveries.c.destination,
        _HOLDS.c.patient_key == deliveries.c.patient_key,
        tuple_(_HOLDS.c.sequence, _HOLDS.c.delivery_id)
        < tuple_(deliveries.c.sequence, deliveries.c.id)).exists()


def hold_behind_dead_letter(connection: Connection, delivery_id: int, journal_id: int,
                            destination: str, patient_key: str, sequence: int,
                            at: datetime) -> None:
    """The dead letter ``delivery_id`` holds its chain from now on."""
    connection.execute(insert(_HOLDS).values(
        kind=DELIVERY, connection_id=destination, patient_key=patient_key,
        sequence=sequence, delivery_id=delivery_id, journal_id=journal_id, created_at=at))


# ---- what an exception item holds --------------------------------------------------------

def waiting_behind(session: Session, item: ExceptionItem) -> dict[str, int] | None:
    """How many deliveries wait behind the item's failure, or None when it holds
    nothing back."""
    hold = _item_hold(session, item)
    return None if hold is None else _count_behind(session.connection(), hold)


def end_item_hold(session: Session, item: ExceptionItem) -> dict[str, int] | None:
    """End the hold of the item's failure, if it holds its chain (the caller makes the
    deliveries parked behind it ready). How many waited, or None when it held nothing
    back."""
    hold = _item_hold(session, item)
    if hold is None:
        return None
    connection = session.connection()
    waiting = _count_behind(connection, hold)
    connection.execute(delete(_HOLDS).where(_HOLDS.c.id == hold.id))
    return waiting


def _item_hold(session: Session, item: ExceptionItem) -> Any:
    if item.delivery_id is None:
        return None
    return session.execute(select(_HOLDS).where(
        _HOLDS.c.kind == DELIVERY, _HOLDS.c.delivery_id == item.delivery_id)).first()


def _count_behind(connection: Connection, hold: Any) -> dict[str, int]:
    count = connection.scalar(select(func.count()).select_from(_DELIVERIES).where(
        _DELIVERIES.c.destination == hold.connection_id,
        _DELIVERIES.c.patient_key == hold.patient_key,
        _DELIVERIES.c.status.in_(_NOT_ENDED),
        tuple_(_DELIVERIES.c.sequence, _DELIVERIES.c.id)
        > tuple_(hold.sequence, hold.delivery_id)))
    return {"deliveries": int(count or 0)}
