"""Recovering what an exception item names, inside the caller's transaction: a dead
delivery sent again, a failed message routed again, or an edited copy of either made
beside the original (both are kept: the original shows what was received, the copy what
was sent). Each step checks the state it changes in the same transaction, so two people
acting at once cannot both succeed. A dead letter that holds its chain (strict ordering,
engine.chain_holds) releases it when it is sent again or replaced: it, or its edit,
goes first, and what waited behind it follows. A failed message that holds its chain
keeps holding it until it, or its edited copy in its place, is routed."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import chain_holds, message_lookups
from engine.errors import SwitchboardError
from engine.hl7v2 import parse
from engine.hl7v2.message import header_codec
from engine.journal import FHIR_R4, Received, entry_fields_and_lookups
from engine.outbox import BLOCKING, unpark_behind
from engine.queues import Invalid, Refused, Unfit
from engine.store.models import Delivery, ExceptionItem, JournalEntry, StageEvent

RECOVERABLE = ("dead", "failed")
"""Delivery states an operator may send again: the outbox has given up on them."""
KEY_LENGTH = 80  # deliveries.idempotency_key
_EDIT_SUFFIX_ROOM = 12  # ":edit" and the edit's number


def requeue_delivery(session: Session, item: ExceptionItem, now: datetime) -> dict[str, Any]:
    """Put a dead or failed delivery back in the outbox, with its retries reset;
    ``attempts_before`` says how many it had made."""
    delivery = _delivery(session, item)
    if delivery.status not in RECOVERABLE:
        raise _not_recoverable(delivery, "retry")
    if not delivery.body:
        raise Refused(f"delivery {delivery.id} has no encoded body to send again",
                      hint="Use reprocess with an edited body")
    # The outbox counts attempts afresh for the retry; the count that ran out is kept
    # in what the retry returns (its audit event and the item), not lost with it.
    failed_attempts = delivery.attempts
    delivery.status, delivery.attempts = "pending", 0
    delivery.next_attempt_at, delivery.updated_at = None, now
    release_chain(session, item, now, "retried")
    return {"delivery_id": delivery.id, "delivery_status": "pending",
            "attempts_before": failed_attempts}


def requeue_message(session: Session, item: ExceptionItem, now: datetime) -> dict[str, Any]:
    """Send a failed message back to the pipeline, which routes it with the newest rules."""
    return requeue_entry(session, _entry(session, item), now, {"exception_id": item.id})


def requeue_entry(session: Session, entry: JournalEntry, now: datetime,
                  detail: dict[str, Any]) -> dict[str, Any]:
    """Send a failed message (locked by the caller) back to the pipeline; ``detail``
    says on its timeline why."""
    if entry.status != "failed":
        raise _not_requeueable(entry)
    entry.status, entry.status_reason = "received", None
    session.add(StageEvent(journal_id=entry.id, stage="requeued", at=now, detail=detail))
    return {"message_id": entry.message_id, "journal_status": "received"}


def replace_delivery(session: Session, item: ExceptionItem, edited: str,
                     now: datetime) -> dict[str, Any]:
    """A new pending delivery with the edited body; the dead original stays as it was."""
    original = _delivery(session, item)
    if original.status not in RECOVERABLE:
        raise _not_recoverable(original, "reprocess")
    check_body(original.media_type, edited)
    replacement = Delivery(
        journal_id=original.journal_id, destination=original.destination,
        patient_key=original.patient_key, sequence=original.sequence, status="pending",
        idempotency_key=_edit_key(session, original.idempotency_key),
        payload=dict(original.payload), media_type=original.media_type, body=edited,
        held_by_row=None, attempts=0, next_attempt_at=None, created_at=now, updated_at=now)
    session.add(replacement)
    session.flush()
    release_chain(session, item, now, "reprocessed")
    return {"delivery_id": original.id, "replacement_delivery_id": replacement.id}


def replace_message(session: Session, item: ExceptionItem, edited: bytes,
                    now: datetime, charset: str | None = None) -> dict[str, Any]:
    """A new journal entry holding the edit, for the pipeline to route; the original
    entry is untouched. Not an original for the dedupe index, so it cannot collide.
    ``charset``: what HL7 v2 bytes are when MSH-18 names none (the source's)."""
    original = _entry(session, item)
    _refuse_if_sent(session, original)
    fields, error, lookups = entry_fields_and_lookups(
        Received(edited, original.source, None, now, original.format, charset))
    if error is not None:
        # How it must read is the item's (its source's format): Unfit, not malformed.
        raise Unfit(f"the edited message cannot be read: {error}",
                      hint="Fix the edit and send it again; the original is unchanged")
    replacement = JournalEntry(**fields)
    session.add(replacement)
    session.flush()
    message_lookups.add(session.connection(), replacement.id, now, lookups)
    session.add(StageEvent(journal_id=replacement.id, stage="reprocessed_from", at=now,
                           detail={"message_id": original.message_id, "exception_id": item.id}))
    chain_holds.follow_copy(session, original.id, replacement.id)
    return {"message_id": original.message_id,
            "replacement_message_id": replacement.message_id}


def release_chain(session: Session, item: ExceptionItem, now: datetime,
                  action: str) -> dict[str, int] | None:
    """End the hold the item's failure has on its chain, if it has one: what was parked
    behind a dead letter is ready now, what was held behind a failed message goes back
    to be routed. How many waited, or None when it held nothing back."""
    released = chain_holds.end_item_hold(session, item, now,
                                         {"exception_id": item.id, "action": action})
    if released is not None and item.delivery_id is not None:
        unpark_behind(session.connection(), [item.delivery_id])
    return released


def message_bytes(entry_format: str, edited: bytes | str, charset: str | None = None) -> bytes:
    """The edit as the journal keeps it: HL7 v2 text in the character set its MSH-18
    names, or ``charset`` when it names none (as the parser will read it), FHIR JSON
    in UTF-8."""
    if isinstance(edited, bytes):
        return edited
    codec = "utf-8" if entry_format == FHIR_R4 else header_codec(
        edited.split("\r")[0].split("\n")[0], charset)
    try:
        return edited.encode(codec)
    except UnicodeEncodeError:
        raise Invalid(f"the edit holds characters the declared character set ({codec}) "
                      "cannot carry", hint="Change MSH-18, or remove those characters"
                      ) from None


def check_body(media_type: str | None, body: str) -> None:
    """Refuse an edited delivery body its destination could not read."""
    if not body.strip():
        raise Invalid("the edited body is empty", hint="Send the whole body to deliver")
    kind = media_type or ""
    try:
        if "json" in kind:
            json.loads(body)
        elif "hl7-v2" in kind:
            parse(body)
    # What it must be is the destination's media type, as stored: Unfit, not malformed.
    except json.JSONDecodeError as error:
        raise Unfit(f"the edited body is not JSON ({error.msg}, line {error.lineno} "
                      f"column {error.colno})", hint=f"Send a {kind} body") from None
    except SwitchboardError as error:
        raise Unfit(f"the edited body is not HL7 v2: {error}",
                      hint=f"Send a {kind} body") from None


def _delivery(session: Session, item: ExceptionItem) -> Delivery:
    delivery = session.get(Delivery, item.delivery_id, with_for_update=True)
    if delivery is None:  # the foreign key makes this a defect, not a user's mistake
        raise Refused(f"exception {item.id} names delivery {item.delivery_id}, "
                      "which does not exist", hint="Resolve this item")
    return delivery


def _entry(session: Session, item: ExceptionItem) -> JournalEntry:
    entry = session.get(JournalEntry, item.journal_id, with_for_update=True)
    if entry is None:
        raise Refused(f"exception {item.id} names no message", hint="Resolve this item")
    return entry


def _not_recoverable(delivery: Delivery, verb: str) -> Refused:
    if delivery.status == "delivered":
        return Refused(f"delivery {delivery.id} was delivered; there is nothing to {verb}",
                       hint="Resolve this item")
    return Refused(f"delivery {delivery.id} is {delivery.status}, not dead: the outbox "
                   f"still has it", hint="Wait for its outcome, or resolve this item")


def _not_requeueable(entry: JournalEntry) -> Refused:
    if entry.status == "routed":
        return Refused(f"message {entry.message_id} was routed; routing it again would "
                       "send it twice", hint="Use reprocess with an edited message, or "
                       "resolve this item")
    if entry.status in ("received", "routing"):
        return Refused(f"message {entry.message_id} is waiting to be routed already",
                       hint="Wait for the pipeline, then resolve this item")
    return Refused(f"message {entry.message_id} was {entry.status} when received: the "
                   "same bytes would fail again", hint="Use reprocess with an edited message")


def _refuse_if_sent(session: Session, entry: JournalEntry) -> None:
    """An edited copy is routed to every destination again: refuse while the original
    has deliveries made or on their way, or they would be sent twice."""
    counts = session.execute(
        select(Delivery.status, func.count()).where(
            Delivery.journal_id == entry.id, Delivery.status.in_((*BLOCKING, "delivered")))
        .group_by(Delivery.status).order_by(Delivery.status)).all()
    if counts:
        made = ", ".join(f"{count} {status}" for status, count in counts)
        raise Refused(f"message {entry.message_id} already has deliveries ({made}): an "
                      "edited copy would be sent to those destinations again",
                      hint="Reprocess the failed delivery's own exception, or resolve "
                           "this item")


def _edit_key(session: Session, original: str) -> str:
    """``<original key>:edit<n>``, n counting the edits made so far; a key too long for
    its column is replaced by its hash so the edit's key still fits."""
    base = original
    if len(original) + _EDIT_SUFFIX_ROOM > KEY_LENGTH:
        base = hashlib.sha256(original.encode()).hexdigest()[:40]
    prefix = f"{base}:edit"
    taken = session.scalars(select(Delivery.idempotency_key).where(
        Delivery.idempotency_key.startswith(prefix, autoescape=True)))
    numbers = [int(key[len(prefix):]) for key in taken if key[len(prefix):].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1}"
