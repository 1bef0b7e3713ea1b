"""Reading the audit trail: its events filtered by actor, action, object and time,
sorted and paged, or streamed whole for an export; and checks of its chain, each one
recorded in the chain itself (``audit.verify``, with the verdict), so when it was last
checked, by whom and with what outcome is as durable as the events it vouches for.
The REST API and the console both read through :class:`AuditTrail`.

Events name things by id and carry no PHI, so reading them is not itself audited."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.orm import Session

from engine.queues import Invalid, Page, aware_moment, check_page, iso
from engine.security.audit import AuditLog, Verdict
from engine.security.security_events import EVENTS
from engine.store.database import reader
from engine.store.models import AuditEvent

FILTERS: Mapping[str, Any] = {
    "actor": AuditEvent.actor, "action": AuditEvent.action,
    "target_type": AuditEvent.target_type, "target_id": AuditEvent.target_id,
}
"""Filters that match a column exactly. Besides them, ``id`` is one event's number;
``event`` a security event's name (a key of engine.security.security_events.EVENTS:
``content_view`` is every kind of view of patient data); ``since`` (from, inclusive)
and ``until`` (before, exclusive) ISO 8601 times with an offset."""
SORTS: Mapping[str, tuple[Any, ...]] = {
    "at": (AuditEvent.id,),  # the chain's order is the ids' order (engine.security.audit)
    "actor": (AuditEvent.actor,),
    "action": (AuditEvent.action,),
    "object": (AuditEvent.target_type, AuditEvent.target_id),
}
VERIFY = "audit.verify"
CHAIN = "audit_chain"
READ_BATCH = 500


class AuditTrail:
    """The audit events in the store behind ``engine``, and checks of their chain."""

    def __init__(self, engine: Engine, log: AuditLog | None = None) -> None:
        self._engine = engine
        self._reads = reader(engine)
        self._log = log or AuditLog(engine)

    def events(self, filters: Mapping[str, Any], sort: str = "-at", page: int = 1,
               per_page: int = 50) -> Page:
        """The events matching every filter given, in ``sort`` order (a key of SORTS,
        "-" before it for descending; newest first by default)."""
        check_page(page, per_page)
        query = _filtered(select(AuditEvent), filters)
        with Session(self._reads) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(_sorted(query, sort).limit(per_page)
                                   .offset((page - 1) * per_page)).all()
            return Page([event_view(row) for row in rows], page, per_page, total)

    def stream(self, filters: Mapping[str, Any], sort: str = "-at") -> Iterator[dict[str, Any]]:
        """Every event matching the filters, in ``sort`` order, read a batch at a time:
        for an export of any size. The filters are checked before the first is read."""
        query = _sorted(_filtered(select(AuditEvent), filters), sort)
        return self._streamed(query)

    def _streamed(self, query: Select[Any]) -> Iterator[dict[str, Any]]:
        with Session(self._reads) as session:
            for row in session.scalars(query.execution_options(yield_per=READ_BATCH)):
                yield event_view(row)

    def choices(self) -> dict[str, list[str]]:
        """The actions and object types the trail holds, to choose a filter from (each
        read through its index)."""
        with Session(self._reads) as session:
            return {name: list(session.scalars(select(column).distinct()
                                               .where(column.is_not(None)).order_by(column)))
                    for name, column in (("action", AuditEvent.action),
                                         ("target_type", AuditEvent.target_type))}

    def verify(self, actor: str) -> Verdict:
        """Check the chain and its anchor, and record the verdict in the chain."""
        verdict = self._log.check()
        with Session(self._engine) as session, session.begin():
            self._log.record(session, actor, VERIFY, CHAIN, None, _recorded(verdict))
        return verdict

    def last_verification(self) -> dict[str, Any] | None:
        """The newest check of the chain recorded: when, by whom and its verdict."""
        with Session(self._reads) as session:
            row = session.scalars(select(AuditEvent).where(AuditEvent.action == VERIFY)
                                  .order_by(AuditEvent.id.desc()).limit(1)).first()
            if row is None:
                return None
            return {**(row.detail or {}), "at": iso(row.at), "actor": row.actor,
                    "event": row.id}

    def failing(self, verification: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The events a recorded check found a problem at, in chain order: each with its
        id, what the check found (``kind``) and, while the table still holds an event
        with that id, its time, actor and action (``held``); a deleted or cut-off
        event is named by its id only."""
        problems = verification.get("problems") or []
        ids = {int(problem["event_id"]) for problem in problems}
        with Session(self._reads) as session:
            rows = {row.id: row for row in session.scalars(
                select(AuditEvent).where(AuditEvent.id.in_(sorted(ids))))} if ids else {}
        found = []
        for problem in problems:
            row = rows.get(int(problem["event_id"]))
            found.append({"id": int(problem["event_id"]), "kind": problem["kind"],
                          "held": row is not None,
                          "at": iso(row.at) if row else None,
                          "actor": row.actor if row else None,
                          "action": row.action if row else None})
        return found


def verdict_view(verdict: Verdict) -> dict[str, Any]:
    return {"ok": verdict.ok, "checked": verdict.checked, "anchor_head": verdict.anchor_head,
            "event_id": verdict.event_id, "kind": verdict.kind, "problem": verdict.problem,
            "counts": dict(verdict.counts),
            "problems": [{"event_id": problem.event_id, "kind": problem.kind,
                          "problem": problem.text} for problem in verdict.problems]}


def _recorded(verdict: Verdict) -> dict[str, Any]:
    """A verdict as its audit event keeps it: what was checked and, when the chain is
    broken, where and how, and the first events found at fault (ids and kinds only, so
    the event stays small however broken the chain is)."""
    kept: dict[str, Any] = {"ok": verdict.ok, "checked": verdict.checked,
                            "anchor_head": verdict.anchor_head}
    if not verdict.ok:
        kept.update(event_id=verdict.event_id, kind=verdict.kind, problem=verdict.problem,
                    counts=dict(verdict.counts),
                    problems=[{"event_id": problem.event_id, "kind": problem.kind}
                              for problem in verdict.problems])
    return kept


def event_view(row: AuditEvent) -> dict[str, Any]:
    return {"id": row.id, "at": iso(row.at), "actor": row.actor, "action": row.action,
            "target_type": row.target_type, "target_id": row.target_id,
            "detail": row.detail, "before_hash": row.before_hash,
            "after_hash": row.after_hash, "reason": row.reason, "hash": row.hash,
            "prev_hash": row.prev_hash}


def _filtered(query: Select[Any], filters: Mapping[str, Any]) -> Select[Any]:
    for name, value in filters.items():
        if value is None or value == "":
            continue
        if name in FILTERS:
            query = query.where(FILTERS[name] == value)
        elif name == "id":
            query = query.where(AuditEvent.id == _event_id(value))
        elif name == "event":
            if value not in EVENTS:
                raise Invalid(f"no security event is called {value!r}",
                              hint="Choose an event: " + ", ".join(EVENTS))
            query = query.where(AuditEvent.action.in_(sorted(EVENTS[value])))
        elif name == "since":
            query = query.where(AuditEvent.at >= aware_moment(name, value))
        elif name == "until":
            query = query.where(AuditEvent.at < aware_moment(name, value))
        else:
            raise Invalid(f"unknown filter {name!r}",
                          hint="Filter by: " + ", ".join([*FILTERS, "id", "event", "since",
                                                         "until"]))
    return query


def _event_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"id {str(value)[:40]!r} is not an event number",
                      hint="Give an event's number, e.g. 42") from None


def _sorted(query: Select[Any], sort: str) -> Select[Any]:
    key = sort.removeprefix("-")
    if key not in SORTS:
        raise Invalid(f"cannot sort by {key!r}", hint="Sort by: " + ", ".join(SORTS))
    descending = sort.startswith("-")
    columns = [*SORTS[key], AuditEvent.id] if key != "at" else [AuditEvent.id]
    return query.order_by(*(column.desc() if descending else column for column in columns))
