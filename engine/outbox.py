"""The outbox: delivery workers claim deliveries, oldest first, and record what became
of each as the destination's exception policy says.

Order is kept per (destination, patient). A delivery may be claimed only when every
earlier delivery of its chain has ended (delivered, dead-lettered, cancelled): one that
is pending, retrying, in flight or held blocks the ones behind it. The claim asks the
store for the oldest deliveries whose chain can move now (nothing earlier in it held,
retrying later or in flight), so a destination that is down holds up its own chains
and no other. ``SKIP LOCKED`` alone cannot promise order (a worker that skips a locked
head would take the next in line), so the claim then checks each candidate against the
delivery before it in its chain and takes only runs that start at their chain's head.
A delivery is also not claimed while an earlier journaled message for the same patient
is still waiting to be routed: its deliveries do not exist yet, and would otherwise be
overtaken. Other patients' deliveries need not wait for it.

A claim marks deliveries in flight with a lease (``next_attempt_at``): if the worker
dies, the lease lapses and another worker delivers again, with the same idempotency
key, so a receiver can drop the repeat.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    bindparam,
    literal,
    select,
    tuple_,
    update,
)

from engine.connectors.sink import DeliveryFailed, Outbound
from engine.journal import now_utc
from engine.rules.exception_policy import Policy
from engine.rules.rule_set import RuleSet
from engine.store.models import Delivery, ExceptionItem, JournalEntry

BLOCKING = ("pending", "retrying", "in_flight", "held")
"""States in which a delivery keeps the later deliveries of its chain waiting."""
STALLING = ("retrying", "in_flight", "held")
"""Blocking states that also keep the chain from moving now: a retry or a lease until
its time, a hold until a person decides. A pending delivery moves with its chain."""
UNROUTED = ("received", "routing")
"""Journal states of a message whose deliveries do not exist yet: the later deliveries
for its patient wait for it, and ``deliveries.sequence`` (its journal id) says which."""
# The partial indexes ix_deliveries_blocking, ix_deliveries_stalling and
# ix_journal_unrouted name these states literally, in this order: keep them in step.

_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
_JOURNAL: Table = JournalEntry.__table__  # type: ignore[assignment]
_EXCEPTIONS: Table = ExceptionItem.__table__  # type: ignore[assignment]
_DELIVERED = update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("delivery_key")).values(
    status="delivered", attempts=bindparam("made"), delivered_at=bindparam("at"),
    next_attempt_at=None, updated_at=bindparam("at"))
_CLAIM_COLUMNS = (
    _DELIVERIES.c.id, _DELIVERIES.c.journal_id, _DELIVERIES.c.destination,
    _DELIVERIES.c.patient_key, _DELIVERIES.c.sequence, _DELIVERIES.c.idempotency_key,
    _DELIVERIES.c.media_type, _DELIVERIES.c.body, _DELIVERIES.c.attempts,
)


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds: what to send, and what the outcome needs."""

    id: int
    journal_id: int
    message_id: str
    destination: str
    patient_key: str | None
    sequence: int
    idempotency_key: str
    media_type: str
    body: str
    attempts: int
    received_at: datetime

    def outbound(self) -> Outbound:
        return Outbound(self.id, self.journal_id, self.message_id, self.destination,
                        self.idempotency_key, self.media_type, self.body, self.patient_key,
                        self.received_at)


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt's outcome: ``failure`` is None when it was delivered."""

    claimed: Claimed
    at: datetime
    failure: DeliveryFailed | None = None


@dataclass(frozen=True)
class Recorded:
    """What a batch of outcomes did, for the metrics: per destination."""

    delivered: list[Attempt]
    retried: list[Attempt]
    dead_lettered: list[Attempt]


class Outbox:
    """Claims and outcomes of deliveries in one store. ``lease`` is how long a claim
    lasts without an outcome before the delivery may be claimed again: longer than a
    sink's timeout, or a slow delivery would be sent twice."""

    def __init__(self, engine: Engine, lease: float = 120.0,
                 rng: random.Random | None = None) -> None:
        self._engine = engine
        self._lease = timedelta(seconds=lease)
        self._rng = rng or random.Random()
        self._postgres = engine.dialect.name == "postgresql"

    # ---- claims ------------------------------------------------------------------------

    def claim(self, limit: int = 100, now: datetime | None = None) -> list[list[Claimed]]:
        """Up to ``limit`` deliveries this worker now holds, as chains: each chain's
        deliveries go to one destination for one patient, to be sent in the order given,
        stopping at the first that fails."""
        now = now or now_utc()
        with self._engine.begin() as connection:
            candidates = self._candidates(connection, limit, now)
            if not candidates:
                return []
            taken = self._heads_of_chains(connection, candidates)
            if taken:
                connection.execute(
                    update(_DELIVERIES).where(_DELIVERIES.c.id.in_([c.id for c in taken]))
                    .values(status="in_flight", next_attempt_at=now + self._lease,
                            updated_at=now))
        return _chains(taken)

    def _candidates(self, connection: Connection, limit: int, now: datetime) -> list[Claimed]:
        """The oldest deliveries due now, in order: pending ones, retries whose time has
        come and claims that lapsed, none behind an earlier delivery of its chain that
        must still wait, nor behind a message of its patient still waiting to be routed."""
        pending = _DELIVERIES.c.status == "pending"
        due = _DELIVERIES.c.status.in_(("retrying", "in_flight")) & (
            _DELIVERIES.c.next_attempt_at <= now)
        rows: list[Any] = []
        # Two queries, so each walks its own index in order instead of sorting a backlog.
        for condition in (pending, due):
            query = self._candidates_query(condition, limit, now)
            if self._postgres:
                query = query.with_for_update(of=_DELIVERIES, skip_locked=True)
            rows.extend(connection.execute(query))
        rows.sort(key=lambda row: (row.sequence, row.id))
        return [_claimed(row) for row in rows[:limit]]

    @staticmethod
    def _candidates_query(condition: ColumnElement[bool], limit: int,
                         now: datetime) -> Select[Any]:
        """The oldest ``limit`` deliveries meeting ``condition`` whose chain may move:
        no earlier delivery of the chain is held, retrying later or in flight, so the
        ones that come back form runs that start at their chain's head, whatever waits
        ahead of them in the table; and no earlier message of the same patient is still
        waiting to be routed (a delivery for no patient has no chain to keep in order)."""
        ahead = _DELIVERIES.alias("ahead")
        stalled = select(ahead.c.id).where(
            ahead.c.destination == _DELIVERIES.c.destination,
            ahead.c.patient_key == _DELIVERIES.c.patient_key,
            _in(ahead.c.status, STALLING),
            tuple_(ahead.c.sequence, ahead.c.id) < tuple_(_DELIVERIES.c.sequence,
                                                          _DELIVERIES.c.id),
            (ahead.c.status == "held") | (ahead.c.next_attempt_at > now))
        unrouted = _JOURNAL.alias("unrouted")
        waiting = select(unrouted.c.id).where(
            unrouted.c.patient_key == _DELIVERIES.c.patient_key,
            _in(unrouted.c.status, UNROUTED),
            unrouted.c.id < _DELIVERIES.c.sequence)
        return (select(*_CLAIM_COLUMNS, _JOURNAL.c.message_id, _JOURNAL.c.received_at)
                .join(_JOURNAL, _JOURNAL.c.id == _DELIVERIES.c.journal_id)
                .where(condition, ~stalled.exists(), ~waiting.exists())
                .order_by(_DELIVERIES.c.sequence, _DELIVERIES.c.id).limit(limit))

    def _heads_of_chains(self, connection: Connection,
                         candidates: list[Claimed]) -> list[Claimed]:
        """The candidates that start their chain, with the candidates that follow each
        without a gap. Deliveries for no patient have no chain: each stands alone.

        The candidates were chosen so, but on PostgreSQL another engine may hold one
        of a chain's deliveries locked (skipped) or have claimed it since: so each
        candidate is checked against the delivery just before it in its chain, which
        must have ended or be a candidate allowed itself."""
        ahead = _DELIVERIES.alias("ahead")
        before = (select(ahead.c.id).where(
            ahead.c.destination == _DELIVERIES.c.destination,
            ahead.c.patient_key == _DELIVERIES.c.patient_key,
            _in(ahead.c.status, BLOCKING),
            tuple_(ahead.c.sequence, ahead.c.id) < tuple_(_DELIVERIES.c.sequence,
                                                          _DELIVERIES.c.id))
            .order_by(ahead.c.sequence.desc(), ahead.c.id.desc()).limit(1).scalar_subquery())
        previous: dict[int, int | None] = {
            delivery: earlier for delivery, earlier in connection.execute(
                select(_DELIVERIES.c.id, before)
                .where(_DELIVERIES.c.id.in_([c.id for c in candidates])))}
        allowed: set[int] = set()
        for claimed in candidates:  # in order, so a chain's earlier candidates come first
            earlier = previous.get(claimed.id)
            if earlier is None or earlier in allowed:
                allowed.add(claimed.id)
        return [c for c in candidates if c.id in allowed]

    def release_claims(self) -> int:
        """Put every delivery in flight back in the queue, for an engine that starts on
        a store no other engine uses (SQLite): its claims died with the last process."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(_DELIVERIES).where(_DELIVERIES.c.status == "in_flight")
                .values(status="pending", next_attempt_at=None, updated_at=now_utc()))
            return int(result.rowcount or 0)

    # ---- outcomes ----------------------------------------------------------------------

    def record(self, attempts: Sequence[Attempt], unsent: Sequence[Claimed],
               rule_set: RuleSet) -> Recorded:
        """Record ``attempts`` and give back ``unsent`` (claimed, not tried: behind a
        failure in their chain) in one transaction."""
        recorded = Recorded([a for a in attempts if a.failure is None], [], [])
        with self._engine.begin() as connection:
            if recorded.delivered:
                # One statement for the batch: most outcomes are deliveries.
                connection.execute(_DELIVERED, [
                    {"delivery_key": a.claimed.id, "made": a.claimed.attempts + 1, "at": a.at}
                    for a in recorded.delivered])
            for attempt in attempts:
                if attempt.failure is None:
                    continue
                if self._failed(connection, attempt, rule_set):
                    recorded.retried.append(attempt)
                else:
                    recorded.dead_lettered.append(attempt)
            if unsent:
                connection.execute(
                    update(_DELIVERIES).where(_DELIVERIES.c.id.in_([c.id for c in unsent]),
                                              _DELIVERIES.c.status == "in_flight")
                    .values(status="pending", next_attempt_at=None, updated_at=now_utc()))
        return recorded

    def _failed(self, connection: Connection, attempt: Attempt, rule_set: RuleSet) -> bool:
        """Schedule a retry, or dead-letter the delivery; True when it will be retried."""
        failure, claimed = attempt.failure, attempt.claimed
        assert failure is not None
        policy = rule_set.policies.resolve(claimed.destination, failure.error_class)
        made = claimed.attempts + 1
        changes: dict[str, Any] = {
            "attempts": made, "error_class": str(failure.error_class),
            "last_error": failure.reason, "updated_at": attempt.at}
        retry = policy.should_retry(made)
        if retry:
            changes["status"] = "retrying"
            changes["next_attempt_at"] = attempt.at + timedelta(
                seconds=policy.delay(made, self._rng))
        else:
            changes["status"] = "dead"
            changes["next_attempt_at"] = None
            connection.execute(_EXCEPTIONS.insert().values(
                **dead_letter(claimed, failure, policy, made, attempt.at, rule_set)))
        connection.execute(
            update(_DELIVERIES).where(_DELIVERIES.c.id == claimed.id).values(**changes))
        return retry


def dead_letter(claimed: Claimed, failure: DeliveryFailed, policy: Policy, attempts: int,
                at: datetime, rule_set: RuleSet) -> dict[str, Any]:
    """The exception item for a delivery whose retries ran out: owned as the policy
    says, with the catalog's recovery procedure, and escalated after the policy's delay."""
    connection = rule_set.connections.get(claimed.destination)
    escalation = policy.escalation
    tries = "attempt" if attempts == 1 else "attempts"
    return {
        "journal_id": claimed.journal_id, "delivery_id": claimed.id,
        "connection_id": claimed.destination, "error_class": str(failure.error_class),
        "owner_role": str(policy.dead_letter.owner_role), "status": "open", "assignee": None,
        "summary": f"delivery to {claimed.destination} failed after {attempts} {tries}: "
                   f"{failure.reason}",
        "detail": {"attempts": attempts, "policy": str(policy.source),
                   "idempotency_key": claimed.idempotency_key,
                   "page_technical_owner": bool(escalation and escalation.page_technical_owner)},
        "recovery_procedure": connection.recovery_procedure if connection else None,
        "created_at": at, "resolved_at": None,
        "escalate_at": at + timedelta(seconds=escalation.after) if escalation else None,
        "escalate_to": str(escalation.notify_role) if escalation else None,
        "escalated_at": None,
    }


def _in(column: ColumnElement[str], states: tuple[str, ...]) -> ColumnElement[bool]:
    """``column IN (states)`` with the states written into the SQL, not bound: a query
    can use a partial index only where its WHERE names the index's states as they are."""
    return column.in_([literal(state, literal_execute=True) for state in states])


def _claimed(row: Any) -> Claimed:
    return Claimed(row.id, row.journal_id, row.message_id, row.destination, row.patient_key,
                   row.sequence, row.idempotency_key, row.media_type or "", row.body or "",
                   row.attempts, row.received_at)


def _chains(taken: list[Claimed]) -> list[list[Claimed]]:
    """Claimed deliveries grouped by (destination, patient), each group in order."""
    groups: dict[tuple[str, str | int], list[Claimed]] = defaultdict(list)
    for claimed in taken:
        key = claimed.patient_key if claimed.patient_key is not None else claimed.id
        groups[claimed.destination, key].append(claimed)
    return list(groups.values())
