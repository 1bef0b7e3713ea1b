"""The exception queue: list, show, assign, resolve, retry, reprocess and skip the
failures people own. The REST API and the command line both act through this one class, so
the rules (what may happen to an item in which state) live in one place.

Every action checks the item's state and changes it in one transaction that holds the
audit chain's lock from its start (on SQLite, the database's write lock), and appends
its audit event in that transaction: two people acting at once are serialised, and a
change without its audit event cannot be committed. Views carry ids and statuses,
never message bodies.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select
from sqlalchemy.orm import Session

from engine import chain_holds
from engine import exception_groups as grouping
from engine import exception_recovery as recovery
from engine.exception_signature import is_key, signature_of
from engine.journal import FHIR_R4, now_utc
from engine.message_edit import HL7V2, JSON, Original, kind_of_media, message_text
from engine.queues import OPEN, Invalid, NotFound, Page, Refused, check_page, iso, settled
from engine.rule_versions import published_charset
from engine.security.audit import AuditLog
from engine.security.permissions import check_assignee, roles_for
from engine.store.database import reader
from engine.store.models import Delivery, ExceptionItem, JournalEntry

FILTERS = {"status": ExceptionItem.status, "connection": ExceptionItem.connection_id,
           "error_class": ExceptionItem.error_class, "owner_role": ExceptionItem.owner_role,
           "assignee": ExceptionItem.assignee}
FILTER_NAMES = (*FILTERS, "signature")
WAITING = "waiting"
"""A status to filter by: open or assigned, the items that still wait for someone."""
SORTS = {"id": ExceptionItem.id, "created_at": ExceptionItem.created_at,
         "connection": ExceptionItem.connection_id, "error_class": ExceptionItem.error_class,
         "status": ExceptionItem.status, "assignee": ExceptionItem.assignee,
         "escalate_at": ExceptionItem.escalate_at}
GROUP_SORTS = grouping.SORTS
SHOWN_BEHIND = 20
"""How many of the messages waiting behind an item its view names."""
# Who may be handed an item: whoever may act on it.
_ACTING = ("exception.resolve", "exception.retry", "exception.reprocess", "exception.skip")

Recover = Callable[[Session, ExceptionItem, datetime], dict[str, Any]]


@dataclass(frozen=True)
class InBulk:
    """An action taken as one step of a bulk job: its audit event names the job, and
    the job's reason is kept on the item (free text may name a patient, so not in the
    audit trail)."""

    job: str
    reason: str


class ExceptionQueue:
    """The exception items in the store behind ``engine``."""

    def __init__(self, engine: Engine, audit: AuditLog | None = None) -> None:
        self._engine = engine
        self._reads = reader(engine)
        self._audit = audit or AuditLog(engine)

    def list(self, filters: Mapping[str, str | None] | None = None, page: int = 1,
             per_page: int = 50, sort: str = "-id") -> Page:
        """Items matching every filter given (see FILTER_NAMES; status may also be
        "waiting"), in ``sort`` order (a name in SORTS, ``-`` first for descending),
        newest first by default."""
        check_page(page, per_page)
        conditions, signature = _conditions(filters)
        order = _order(sort)
        with Session(self._reads) as session:
            if signature is None:
                query = select(ExceptionItem).where(*conditions)
                total = session.scalar(
                    select(func.count()).select_from(query.subquery())) or 0
                rows = session.scalars(query.order_by(*order).limit(per_page)
                                       .offset((page - 1) * per_page)).all()
            else:
                ids = grouping.member_ids(session, conditions, signature, order)
                total, wanted = len(ids), ids[(page - 1) * per_page:page * per_page]
                found = {row.id: row for row in session.scalars(
                    select(ExceptionItem).where(ExceptionItem.id.in_(wanted)))}
                rows = [found[item_id] for item_id in wanted if item_id in found]
            return Page([exception_summary(row) for row in rows], page, per_page, total)

    def signatures(self, filters: Mapping[str, str | None] | None = None, page: int = 1,
                   per_page: int = 50, sort: str = "-count") -> Page:
        """The signatures of the items matching the filters, each with how many items
        have it and when the first and last were raised; by ``sort`` (a name in
        GROUP_SORTS, ``-`` first for descending), largest group first by default."""
        check_page(page, per_page)
        if sort.removeprefix("-") not in GROUP_SORTS:
            raise Invalid(f"unknown sort {sort!r}",
                          hint=f"Sort groups by: {', '.join(GROUP_SORTS)} (- for descending)")
        conditions, signature = _conditions(filters)
        with Session(self._reads) as session:
            found = grouping.groups(session, conditions)
        if signature is not None:
            found = [group for group in found if group.signature.key == signature]
        ordered = grouping.sorted_groups(found, sort)
        shown = ordered[(page - 1) * per_page:page * per_page]
        return Page([group.as_dict() for group in shown], page, per_page, len(ordered))

    def waiting_ids(self, filters: Mapping[str, str | None] | None,
                    limit: int) -> builtins.list[int]:
        """The ids of the items still waiting (open or assigned) that match the
        filters, oldest first, at most ``limit``: what a bulk action over a filtered
        list or a whole group takes."""
        conditions, signature = _conditions({**(filters or {}), "status": WAITING})
        order = (ExceptionItem.id,)
        with Session(self._reads) as session:
            if signature is not None:
                return grouping.member_ids(session, conditions, signature, order)[:limit]
            return list(session.scalars(select(ExceptionItem.id).where(*conditions)
                                        .order_by(*order).limit(limit)))

    def oldest_first(self, item_ids: Iterable[int]) -> builtins.list[int]:
        """``item_ids`` (once each) in the order their failures were to go out: by
        their deliveries' place in the outbox's order (sequence, then id), a failed
        message by its place in the journal; so a retry of them all sends each
        patient's messages in order. Ids not found keep their place at the end."""
        ids = builtins.list(dict.fromkeys(item_ids))
        if not ids:
            return []
        with Session(self._reads) as session:
            rows = session.execute(
                select(ExceptionItem.id, ExceptionItem.journal_id, Delivery.sequence,
                       Delivery.id)
                .outerjoin(Delivery, Delivery.id == ExceptionItem.delivery_id)
                .where(ExceptionItem.id.in_(ids))).all()
        places = {item_id: ((0, sequence, delivery_id, item_id) if delivery_id is not None
                            else (0, journal_id, 0, item_id) if journal_id is not None
                            else (1, 0, 0, item_id))
                  for item_id, journal_id, sequence, delivery_id in rows}
        found = sorted(places, key=places.__getitem__)
        return [*found, *(item_id for item_id in ids if item_id not in places)]

    def retryable_for(self, message_ids: Iterable[str]) -> builtins.list[int]:
        """The waiting items a retry would act on for these messages: each dead or
        failed delivery's, and each failed message's own; oldest first. What a bulk
        retry over messages chosen in the message browser takes."""
        ids = builtins.list(dict.fromkeys(message_ids))
        if not ids:
            return []
        with Session(self._reads) as session:
            journal = select(JournalEntry.id, JournalEntry.status).where(
                JournalEntry.message_id.in_(ids)).subquery()
            return builtins.list(session.scalars(
                select(ExceptionItem.id)
                .join(journal, journal.c.id == ExceptionItem.journal_id)
                .outerjoin(Delivery, Delivery.id == ExceptionItem.delivery_id)
                .where(ExceptionItem.status.in_(OPEN),
                       or_(Delivery.status.in_(recovery.RECOVERABLE),
                           and_(ExceptionItem.delivery_id.is_(None),
                                journal.c.status == "failed")))
                .order_by(ExceptionItem.id)))

    def facets(self) -> dict[str, builtins.list[str]]:
        """The connections, error classes and assignees of the waiting items: what a
        filter is likely to be asked for."""
        columns = {"connection": ExceptionItem.connection_id,
                   "error_class": ExceptionItem.error_class,
                   "assignee": ExceptionItem.assignee}
        with Session(self._reads) as session:
            return {name: sorted(value for value in session.scalars(
                select(column).where(ExceptionItem.status.in_(OPEN)).distinct())
                if value is not None) for name, column in columns.items()}

    def show(self, item_id: int) -> dict[str, Any]:
        """The item, its delivery's state, its message id, any replacement made, how
        many deliveries or messages wait behind it (None when it holds nothing back)
        and the first SHOWN_BEHIND of their messages (ids and control ids)."""
        with Session(self._reads) as session:
            item = _found(session.get(ExceptionItem, item_id), item_id)
            message_id = None if item.journal_id is None else session.scalar(
                select(JournalEntry.message_id).where(JournalEntry.id == item.journal_id))
            delivery = (None if item.delivery_id is None
                        else session.get(Delivery, item.delivery_id))
            waiting = chain_holds.waiting_behind(session, item)
            behind = ([] if waiting is None
                      else chain_holds.messages_behind(session, item, SHOWN_BEHIND))
            return {**exception_summary(item), "message_id": message_id,
                    "detail": item.detail, "resolved_at": iso(item.resolved_at),
                    "escalate_at": iso(item.escalate_at), "escalate_to": item.escalate_to,
                    "escalated_at": iso(item.escalated_at),
                    "delivery": None if delivery is None else _delivery_view(delivery),
                    "replacement": _replacement(session, item.detail or {}),
                    "waiting_behind": waiting, "behind": behind,
                    "recovery_actions": _recovery_actions(item, waiting)}

    def original(self, item_id: int, actor: str) -> Original:
        """The content a reprocess of the open item would replace, for someone to edit:
        the dead delivery's encoded body, or the failed message as received. A view
        of content, so audited as ``content.view`` of that delivery or message."""
        with self._changing(item_id) as (session, item):
            if item.delivery_id is not None:
                delivery = session.get(Delivery, item.delivery_id)
                assert delivery is not None  # a foreign key
                found = Original(kind_of_media(delivery.media_type), "delivery",
                                 str(delivery.id), delivery.body or "")
            elif item.journal_id is not None:
                entry = session.get(JournalEntry, item.journal_id)
                assert entry is not None  # a foreign key
                fhir = entry.format == FHIR_R4
                text = message_text(bytes(entry.raw or b""), fhir,
                                    None if fhir else published_charset(session, entry.source))
                found = Original(JSON if fhir else HL7V2, "message", entry.message_id, text)
            else:
                raise Refused(f"exception {item.id} names no message or delivery",
                              hint="Resolve it once the failure is handled")
            self._audit.record(session, actor, "content.view", found.what, found.target,
                               {"exception_id": item.id, "purpose": "edit to reprocess"})
        return found

    def assign(self, item_id: int, assignee: str, actor: str,
               bulk: InBulk | None = None) -> dict[str, Any]:
        """Give an open item to someone who may act on it."""
        with self._changing(item_id) as (session, item):
            check_assignee(session, assignee, roles_for(*_ACTING))
            item.assignee, item.status = assignee, "assigned"
            self._record(session, actor, "exception.assign", item, {"assignee": assignee},
                         bulk)
        return self.show(item_id)

    def resolve(self, item_id: int, reason: str, actor: str,
                bulk: InBulk | None = None) -> dict[str, Any]:
        """Close an item by hand; what its failure held back goes on. The reason is kept
        on the item, not in the audit trail: free text may name a patient."""
        if not reason or not reason.strip():
            raise Invalid("a resolution needs a reason", hint="Say what was done about it")
        with self._changing(item_id) as (session, item):
            now = now_utc()
            released = recovery.release_chain(session, item, now, "resolved")
            item.status, item.resolved_at = "resolved", now
            item.detail = {**(item.detail or {}),
                           "resolution": {"reason": reason, "by": actor, "at": now.isoformat()}}
            self._record(session, actor, "exception.resolve", item,
                         {} if released is None else {"released": released}, bulk)
        return self.show(item_id)

    def skip(self, item_id: int, reason: str, actor: str) -> dict[str, Any]:
        """Let what the item's failure holds back go on without it: a dead letter stays
        unsent, a failed message unrouted. The reason is kept on the item, not in the
        audit trail: free text may name a patient."""
        if not reason or not reason.strip():
            raise Invalid("a skip needs a reason",
                          hint="Say why what waits behind it may go on without it")
        with self._changing(item_id) as (session, item):
            now = now_utc()
            released = recovery.release_chain(session, item, now, "skipped")
            if released is None:
                raise Refused(f"exception {item_id} holds nothing back: nothing waits "
                              "behind it", hint="Resolve it, or retry it")
            item.status, item.resolved_at = "skipped", now
            item.detail = {**(item.detail or {}), "skip": {
                "reason": reason, "by": actor, "at": now.isoformat(), "released": released}}
            self._record(session, actor, "exception.skip", item, {"released": released})
        return self.show(item_id)

    def retry(self, item_id: int, actor: str, bulk: InBulk | None = None,
              reason: str | None = None) -> dict[str, Any]:
        """Send the dead delivery again, or route the failed message again, unchanged.
        Who retried it and when is kept on the item (``retry``), with ``reason`` when
        one is given (the console asks for one; a bulk job's is kept as ``bulk``) and
        how many attempts the delivery had made, which the retry starts afresh."""
        if reason is not None and not reason.strip():
            raise Invalid("a retry needs a reason",
                          hint="Say why it may be sent again now")
        return self._recover(item_id, actor, "retried", recovery.requeue_delivery,
                             recovery.requeue_message, bulk, reason)

    def reprocess(self, item_id: int, edited: bytes | str, actor: str) -> dict[str, Any]:
        """Send an edited copy in place of the failed delivery or message; both kept."""
        def delivery(session: Session, item: ExceptionItem, now: datetime) -> dict[str, Any]:
            body = edited if isinstance(edited, str) else _text(edited)
            return recovery.replace_delivery(session, item, body, now)

        def message(session: Session, item: ExceptionItem, now: datetime) -> dict[str, Any]:
            entry = session.execute(select(JournalEntry.format, JournalEntry.source)
                                    .where(JournalEntry.id == item.journal_id)).one()
            charset = published_charset(session, entry.source)
            raw = recovery.message_bytes(entry.format or "", edited, charset)
            return recovery.replace_message(session, item, raw, now, charset)

        return self._recover(item_id, actor, "reprocessed", delivery, message)

    # ---- one transaction per action ----------------------------------------------------

    def _recover(self, item_id: int, actor: str, status: str, for_delivery: Recover,
                 for_message: Recover, bulk: InBulk | None = None,
                 reason: str | None = None) -> dict[str, Any]:
        with self._changing(item_id) as (session, item):
            now = now_utc()
            if item.delivery_id is not None:
                outcome = for_delivery(session, item, now)
            elif item.journal_id is not None:
                outcome = for_message(session, item, now)
            else:
                raise Refused(f"exception {item.id} names no message or delivery",
                              hint="Resolve it once the failure is handled")
            item.status, item.resolved_at = status, now
            replacement = {k: v for k, v in outcome.items() if k.startswith("replacement_")}
            if replacement:
                item.detail = {**(item.detail or {}), **replacement}
            if status == "retried":
                item.detail = {**(item.detail or {}), "retry": _retry_note(
                    actor, now, reason, outcome.get("attempts_before"))}
            verb = "exception.retry" if status == "retried" else "exception.reprocess"
            self._record(session, actor, verb, item, outcome, bulk)
        return self.show(item_id)

    @contextmanager
    def _changing(self, item_id: int) -> Iterator[tuple[Session, ExceptionItem]]:
        """A writing transaction holding the audit lock and the open item."""
        with Session(self._engine) as session, session.begin():
            self._audit.lock(session)
            item = _found(session.get(ExceptionItem, item_id, with_for_update=True), item_id)
            if item.status not in OPEN:
                raise settled("exception", item_id, item.status)
            yield session, item

    def _record(self, session: Session, actor: str, action: str, item: ExceptionItem,
                detail: dict[str, Any], bulk: InBulk | None = None) -> None:
        if bulk is not None:
            item.detail = {**(item.detail or {}), "bulk": {
                "job": bulk.job, "reason": bulk.reason, "by": actor,
                "at": now_utc().isoformat()}}
            detail = {**detail, "bulk": bulk.job}
        session.flush()
        self._audit.record(session, actor, action, "exception", str(item.id),
                           {"status": item.status, **detail})


def exception_summary(item: ExceptionItem) -> dict[str, Any]:
    """What a listing shows of an item."""
    return {
        "id": item.id, "connection": item.connection_id, "error_class": item.error_class,
        "owner_role": item.owner_role, "status": item.status, "assignee": item.assignee,
        "summary": item.summary, "recovery_procedure": item.recovery_procedure,
        "created_at": item.created_at.isoformat(), "delivery_id": item.delivery_id,
        "escalate_at": iso(item.escalate_at), "escalate_to": item.escalate_to,
        "signature": signature_of(item.connection_id, item.error_class, item.summary).key,
    }


def _conditions(filters: Mapping[str, str | None] | None
                ) -> tuple[list[ColumnElement[bool]], str | None]:
    """The SQL conditions of the filters given, and the signature asked for if any."""
    conditions: list[ColumnElement[bool]] = []
    signature = None
    for name, value in (filters or {}).items():
        if name not in FILTER_NAMES:
            raise Invalid(f"unknown filter {name!r}",
                          hint=f"Filter by: {', '.join(FILTER_NAMES)}")
        if not value:
            continue
        if name == "signature":
            if not is_key(value):
                raise Invalid(f"{value!r} is not a signature",
                              hint="Take one from the signatures listing")
            signature = value
        elif name == "status" and value == WAITING:
            conditions.append(ExceptionItem.status.in_(OPEN))
        else:
            conditions.append(FILTERS[name] == value)
    return conditions, signature


def _order(sort: str) -> tuple[Any, ...]:
    """ORDER BY for ``sort``: empty values last either way (the two stores put NULL
    at opposite ends), then the id, so equal values keep one order."""
    name, descending = sort.removeprefix("-"), sort.startswith("-")
    if name not in SORTS:
        raise Invalid(f"unknown sort {sort!r}",
                      hint=f"Sort by: {', '.join(SORTS)} (- for descending)")
    column, item_id = SORTS[name], ExceptionItem.id
    if descending:
        return column.is_(None), column.desc(), item_id.desc()
    return column.is_(None), column, item_id


def _recovery_actions(item: ExceptionItem, waiting: dict[str, int] | None) -> list[str]:
    """What an operator may still do with the item, in the order they are usually
    weighed: skip only while something waits behind it."""
    if item.status not in OPEN:
        return []
    names_work = item.delivery_id is not None or item.journal_id is not None
    return ["assign", *(["retry", "reprocess"] if names_work else []),
            *(["skip"] if waiting is not None else []), "resolve"]


def _retry_note(actor: str, at: datetime, reason: str | None,
                attempts_before: int | None) -> dict[str, Any]:
    return {"by": actor, "at": at.isoformat(),
            **({"reason": reason} if reason is not None else {}),
            **({"attempts_before": attempts_before} if attempts_before is not None else {})}


def _delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {"id": delivery.id, "destination": delivery.destination,
            "status": delivery.status, "attempts": delivery.attempts,
            "error_class": delivery.error_class, "last_error": delivery.last_error,
            "idempotency_key": delivery.idempotency_key}


def _replacement(session: Session, detail: dict[str, Any]) -> dict[str, Any] | None:
    """The delivery or message a reprocess made, with its state now."""
    delivery_id = detail.get("replacement_delivery_id")
    if delivery_id is not None:
        status = session.scalar(select(Delivery.status).where(Delivery.id == delivery_id))
        return {"delivery_id": delivery_id, "status": status}
    message_id = detail.get("replacement_message_id")
    if message_id is not None:
        status = session.scalar(
            select(JournalEntry.status).where(JournalEntry.message_id == message_id))
        return {"message_id": message_id, "status": status}
    return None


def _found(item: ExceptionItem | None, item_id: int) -> ExceptionItem:
    if item is None:
        raise NotFound(f"no exception {item_id}",
                       hint="See the exception queue (GET /api/exceptions) for ids")
    return item


def _text(edited: bytes) -> str:
    try:
        return edited.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the edited body is not UTF-8 text",
                      hint="Save the edit as UTF-8") from None

