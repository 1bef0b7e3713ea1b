"""Strict ordering behind a failure: on a connection whose catalog entry says
``ordering: strict`` (the default), a dead letter holds the later deliveries of its
(destination, patient), and a message that failed in the pipeline holds the later
messages of its (source, patient) before they are routed, until an operator retries,
reprocesses, skips or resolves its exception item. Otherwise that retry would send the
admission after the discharge that followed it. Other patients, and the patient's
messages on other connections, keep flowing. Under ``skip_dead`` no hold is made.

A hold is a row in ``chain_holds`` while it is in force, and none once it ends: the
outbox's claim and the pipeline's pass each probe it by index, however many wait. What
waits behind a dead letter is parked in the outbox; the messages that wait behind a
failed message are ``held`` in the journal, their status reason naming the failure.
When a failed message is retried or reprocessed, its hold stays until the message (or
its edited copy, which takes its place in the chain) is routed: the messages behind it
are routed after it, never before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    ScalarSelect,
    Table,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from engine.rules.catalog_entry import Ordering
from engine.rules.rule_set import RuleSet
from engine.store.models import ChainHold, Delivery, ExceptionItem, JournalEntry, StageEvent

DELIVERY, MESSAGE = "delivery", "message"
HELD = "held"
"""The journal status of a message waiting behind a failed one."""
WAITING_TO_ROUTE = ("received", "routing", HELD)
"""Journal states of a message not routed yet, which waits behind a hold."""
_NOT_ENDED = ("pending", "retrying", "in_flight", "held")

_HOLDS: Table = ChainHold.__table__  # type: ignore[assignment]
_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
_JOURNAL: Table = JournalEntry.__table__  # type: ignore[assignment]
_STAGES: Table = StageEvent.__table__  # type: ignore[assignment]


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


# ---- messages ----------------------------------------------------------------------------

def message_hold_ahead(journal: Any) -> ScalarSelect[Any]:
    """The id of the message that a hold earlier in the chain of ``journal`` (the
    table) waits for, or NULL: the pipeline's probe, one index lookup."""
    hold, waited = _HOLDS.alias("hold_ahead"), _JOURNAL.alias("waited")
    return (select(waited.c.message_id)
            .select_from(hold.join(waited, waited.c.id == hold.c.journal_id))
            .where(*_ahead_of(hold, journal.c.id, journal.c.source, journal.c.patient_key))
            .order_by(hold.c.sequence).limit(1).scalar_subquery())


def own_hold_place(journal: Any) -> ScalarSelect[Any]:
    """For a message its chain waits for (a failed one sent again, or an edited copy),
    the place in the chain it takes, the failed original's; NULL for any other."""
    hold = _HOLDS.alias("own_hold")
    return (select(hold.c.sequence)
            .where(hold.c.kind == MESSAGE, hold.c.journal_id == journal.c.id)
            .limit(1).scalar_subquery())


@dataclass(frozen=True)
class Waiting:
    """A message found behind a failed one of its source and patient."""

    journal_id: int
    source: str
    patient_key: str
    behind: str  # the message id of the message its chain waits for


def hold_messages(connection: Connection, failed: Sequence[dict[str, Any]],
                  at: datetime) -> None:
    """Holds for messages failed in the pipeline, each row naming its ``journal_id``,
    ``source`` and ``patient_key``."""
    if failed:
        connection.execute(insert(_HOLDS), [
            {"kind": MESSAGE, "connection_id": row["source"],
             "patient_key": row["patient_key"], "sequence": row["journal_id"],
             "delivery_id": None, "journal_id": row["journal_id"], "created_at": at}
            for row in failed])


def end_routed_holds(connection: Connection, journal_ids: Sequence[int],
                     at: datetime) -> None:
    """The messages ``journal_ids``, that chains waited for, are routed: their holds
    end, and what was held behind them goes back to be routed after them."""
    if not journal_ids:
        return
    for hold in connection.execute(select(_HOLDS).where(
            _HOLDS.c.kind == MESSAGE, _HOLDS.c.journal_id.in_(list(journal_ids)))).all():
        _end_message_hold(connection, hold, at, {"routed": hold.journal_id})


def hold_waiting(connection: Connection, waiting: Sequence[Waiting], at: datetime,
                 lock: bool) -> None:
    """Mark ``waiting`` held, each with its reason, if a hold still stands ahead of it;
    one whose hold ended since it was read goes back to be routed. With ``lock`` (on
    PostgreSQL) the hold's row is share-locked, so that an operator ending the hold at
    this moment waits for this transaction, then releases what it held."""
    for message in waiting:
        hold = _HOLDS.alias("hold_ahead")
        query = select(hold.c.id).where(*_ahead_of(
            hold, message.journal_id, message.source, message.patient_key)).limit(1)
        if lock:
            query = query.with_for_update(read=True)
        held = connection.execute(query).first() is not None
        reason = held_reason(message.behind, message.source) if held else None
        connection.execute(update(_JOURNAL).where(_JOURNAL.c.id == message.journal_id)
                           .values(status=HELD if held else "received", status_reason=reason))
        if held:
            connection.execute(insert(_STAGES).values(
                journal_id=message.journal_id, stage=HELD, at=at, rule_set_version=None,
                detail={"behind": message.behind}))


def held_reason(behind: str, source: str) -> str:
    """Why a message is held, in the message log: ids only, no content."""
    return (f"waits behind message {behind}, an earlier message from {source} for this "
            "patient that failed in the pipeline (strict ordering): it is routed once "
            "that one is retried, reprocessed, skipped or resolved")


def follow_copy(session: Session, original_id: int, copy_id: int) -> None:
    """An edited copy of a failed message was made: its chain now waits for the copy,
    which takes the original's place in it."""
    session.execute(update(_HOLDS).where(_HOLDS.c.kind == MESSAGE,
                                         _HOLDS.c.journal_id == original_id)
                    .values(journal_id=copy_id))


# ---- what an exception item holds --------------------------------------------------------

def waiting_behind(session: Session, item: ExceptionItem) -> dict[str, int] | None:
    """How many deliveries or messages wait behind the item's failure, or None when
    it holds nothing back."""
    hold = _item_hold(session, item)
    return None if hold is None else _count_behind(session.connection(), hold)


def messages_behind(session: Session, item: ExceptionItem,
                    limit: int) -> list[dict[str, str | None]]:
    """The first ``limit`` messages waiting behind the item's failure, in the order
    they will go: each one's message id and control id (ids only, no content)."""
    hold = _item_hold(session, item)
    if hold is None:
        return []
    journal = _JOURNAL
    if hold.kind == DELIVERY:
        query = (select(journal.c.message_id, journal.c.control_id)
                 .join(_DELIVERIES, _DELIVERIES.c.journal_id == journal.c.id)
                 .where(_DELIVERIES.c.destination == hold.connection_id,
                        _DELIVERIES.c.patient_key == hold.patient_key,
                        _DELIVERIES.c.status.in_(_NOT_ENDED),
                        tuple_(_DELIVERIES.c.sequence, _DELIVERIES.c.id)
                        > tuple_(hold.sequence, hold.delivery_id))
                 .order_by(_DELIVERIES.c.sequence, _DELIVERIES.c.id))
    else:
        query = (select(journal.c.message_id, journal.c.control_id)
                 .where(journal.c.source == hold.connection_id,
                        journal.c.patient_key == hold.patient_key,
                        journal.c.status.in_(WAITING_TO_ROUTE), journal.c.id > hold.sequence,
                        journal.c.id != hold.journal_id)
                 .order_by(journal.c.id))
    return [{"message_id": message_id, "control_id": control_id}
            for message_id, control_id in session.execute(query.limit(limit))]


def end_item_hold(session: Session, item: ExceptionItem, at: datetime,
                  why: dict[str, Any]) -> dict[str, int] | None:
    """End the hold of the item's failure, if it holds its chain: messages held
    behind it go back to be routed (``why`` goes in their timeline); the caller makes
    deliveries parked behind it ready. How many waited, or None when it held nothing
    back."""
    hold = _item_hold(session, item)
    if hold is None:
        return None
    connection = session.connection()
    waiting = _count_behind(connection, hold)
    if hold.kind == MESSAGE:
        _end_message_hold(connection, hold, at, why)
    else:
        connection.execute(delete(_HOLDS).where(_HOLDS.c.id == hold.id))
    return waiting


def _item_hold(session: Session, item: ExceptionItem) -> Any:
    if item.delivery_id is not None:
        mine = (_HOLDS.c.kind == DELIVERY) & (_HOLDS.c.delivery_id == item.delivery_id)
    elif item.journal_id is not None:
        mine = (_HOLDS.c.kind == MESSAGE) & (_HOLDS.c.journal_id == item.journal_id)
    else:
        return None
    return session.execute(select(_HOLDS).where(mine)).first()


def _count_behind(connection: Connection, hold: Any) -> dict[str, int]:
    if hold.kind == DELIVERY:
        count = connection.scalar(select(func.count()).select_from(_DELIVERIES).where(
            _DELIVERIES.c.destination == hold.connection_id,
            _DELIVERIES.c.patient_key == hold.patient_key,
            _DELIVERIES.c.status.in_(_NOT_ENDED),
            tuple_(_DELIVERIES.c.sequence, _DELIVERIES.c.id)
            > tuple_(hold.sequence, hold.delivery_id)))
        return {"deliveries": int(count or 0)}
    count = connection.scalar(select(func.count()).select_from(_JOURNAL).where(
        _JOURNAL.c.source == hold.connection_id, _JOURNAL.c.patient_key == hold.patient_key,
        _JOURNAL.c.status.in_(WAITING_TO_ROUTE), _JOURNAL.c.id > hold.sequence,
        _JOURNAL.c.id != hold.journal_id))
    return {"messages": int(count or 0)}


def _end_message_hold(connection: Connection, hold: Any, at: datetime,
                      why: dict[str, Any]) -> None:
    """End a message hold: the messages held behind it go back to be routed, and the
    pipeline takes them oldest first."""
    connection.execute(delete(_HOLDS).where(_HOLDS.c.id == hold.id))
    released = list(connection.scalars(select(_JOURNAL.c.id).where(
        _JOURNAL.c.source == hold.connection_id, _JOURNAL.c.patient_key == hold.patient_key,
        _JOURNAL.c.status == HELD)))
    if not released:
        return
    connection.execute(update(_JOURNAL).where(_JOURNAL.c.id.in_(released))
                       .values(status="received", status_reason=None))
    connection.execute(insert(_STAGES), [
        {"journal_id": journal_id, "stage": "released", "at": at, "rule_set_version": None,
         "detail": why} for journal_id in released])


def _ahead_of(hold: Any, journal_id: Any, source: Any,
              patient_key: Any) -> tuple[ColumnElement[bool], ...]:
    """A message hold earlier in the chain of the message ``journal_id``, other than a
    hold that waits for that message itself."""
    return (hold.c.kind == MESSAGE, hold.c.connection_id == source,
            hold.c.patient_key == patient_key, hold.c.sequence < journal_id,
            hold.c.journal_id != journal_id)
