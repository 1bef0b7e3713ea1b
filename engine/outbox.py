"""The outbox: delivery workers claim deliveries, oldest first, and record what became
of each as the destination's exception policy says.

Order is kept per (destination, patient). A delivery may be claimed only when every
earlier delivery of its chain has ended (delivered, dead-lettered, cancelled): one that
is pending, retrying, in flight or held blocks the ones behind it. A dead letter to a
destination whose catalog entry says ``ordering: strict`` (the default) holds its chain
too, until an operator retries, reprocesses, skips or resolves it (engine.chain_holds):
else its retry would arrive after the deliveries that went on without it. The claim
asks the store for the oldest deliveries whose chain can move now (nothing earlier in
it held, retrying later or in flight, no dead letter holding it), so a destination that
is down holds up its own chains and no other. ``SKIP LOCKED`` alone cannot promise
order (a worker that skips a locked head would take the next in line), so the claim
then checks each candidate against the delivery before it in its chain and takes only
runs that start at their chain's head.
A delivery is also not claimed while an earlier journaled message for the same patient
is still waiting to be routed: its deliveries do not exist yet, and would otherwise be
overtaken. Other patients' deliveries need not wait for it.

A pending delivery behind a head that waits (a retry scheduled for later, a hold, a
dead letter that holds its chain) is parked: its ``next_attempt_at`` says when to look
at it again (the head's retry, or a while for a hold or a dead letter, or at once when
the hold is decided or the dead letter released). So a destination that is down for
hours, with thousands of deliveries queued behind its retrying heads or its dead
letters, costs each claim nothing: a claim walks only the deliveries that are ready,
and those that have come due.

A claim marks deliveries in flight with a lease (``next_attempt_at``) and a claim
token: if the worker dies, the lease lapses and another worker delivers again, with the
same idempotency key, so a receiver can drop the repeat. The worker renews its leases
while it sends (``renew``), so a slow destination is not sent a delivery twice by two
live workers, and every outcome is fenced by its token: an outcome counts only while
its claim still holds the delivery, so a worker whose lease lapsed cannot overwrite
what its successor recorded, nor give back what it no longer holds.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    bindparam,
    func,
    literal,
    select,
    tuple_,
    update,
)

from engine.chain_holds import held_by_dead_letter, hold_behind_dead_letter, strict
from engine.connectors.sink import DeliveryFailed, Outbound
from engine.journal import now_utc
from engine.rules.exception_policy import NEVER_RETRIED, Policy
from engine.rules.rule_set import RuleSet
from engine.store.limits import storable_text
from engine.store.models import Delivery, ExceptionItem, JournalEntry

BLOCKING = ("pending", "retrying", "in_flight", "held")
"""States in which a delivery keeps the later deliveries of its chain waiting."""
STALLING = ("retrying", "in_flight", "held")
"""Blocking states that also keep the chain from moving now: a retry or a lease until
its time, a hold until a person decides. A pending delivery moves with its chain."""
WAITING = ("pending", "retrying", "in_flight")
"""States whose ``next_attempt_at`` says when a worker should look again: a parked
delivery, a retry, a lease."""
UNROUTED = ("received", "routing")
"""Journal states of a message whose deliveries do not exist yet: the later deliveries
for its patient wait for it, and ``deliveries.sequence`` (its journal id) says which."""
# The partial indexes ix_deliveries_blocking, ix_deliveries_stalling and
# ix_journal_unrouted name these states literally, in this order, and
# ix_deliveries_ready names pending with no next_attempt_at: keep them in step.
PARK_WALKS_PER_CLAIM = 5
"""How many batches of waiting deliveries one claim parks before it gives up its turn."""
HOLD_RECHECK = timedelta(seconds=60)
"""How long a delivery parked behind a hold waits before it is looked at again, should
the hold be lifted without unparking it (a decision unparks it at once)."""
DEAD_RECHECK = timedelta(minutes=10)
"""How long a delivery parked behind a dead letter that holds its chain waits before it
is looked at again. An operator's action unparks it at once; this only bounds the wait
should a claim that read the hold just before it ended park it just after."""

_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
_JOURNAL: Table = JournalEntry.__table__  # type: ignore[assignment]
_EXCEPTIONS: Table = ExceptionItem.__table__  # type: ignore[assignment]
_DELIVERED = update(_DELIVERIES).where(
    _DELIVERIES.c.id == bindparam("delivery_key"), _DELIVERIES.c.status == "in_flight",
    _DELIVERIES.c.claim_token == bindparam("token")).values(
    status="delivered", attempts=bindparam("made"), delivered_at=bindparam("at"),
    next_attempt_at=None, claim_token=None, updated_at=bindparam("at"))
_PARK = update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("delivery_key")).values(
    next_attempt_at=bindparam("until"))
_CLAIM_COLUMNS = (
    _DELIVERIES.c.id, _DELIVERIES.c.journal_id, _DELIVERIES.c.destination,
    _DELIVERIES.c.patient_key, _DELIVERIES.c.sequence, _DELIVERIES.c.idempotency_key,
    _DELIVERIES.c.media_type, _DELIVERIES.c.body, _DELIVERIES.c.attempts,
)

log = logging.getLogger("switchboard.delivery")


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
    claim_token: str = ""
    """The claim under which it is held: its outcome counts only while that holds."""

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
    """What a batch of outcomes did, for the metrics: per destination. ``fenced`` are
    the outcomes that changed nothing: their claim had lapsed and been taken over."""

    delivered: list[Attempt]
    retried: list[Attempt]
    dead_lettered: list[Attempt]
    fenced: list[Attempt] = field(default_factory=list)

    def extend(self, other: Recorded) -> None:
        self.delivered.extend(other.delivered)
        self.retried.extend(other.retried)
        self.dead_lettered.extend(other.dead_lettered)
        self.fenced.extend(other.fenced)


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

    @property
    def lease(self) -> timedelta:
        return self._lease

    # ---- claims ------------------------------------------------------------------------

    def claim(self, limit: int = 100, now: datetime | None = None) -> list[list[Claimed]]:
        """Up to ``limit`` deliveries this worker now holds, as chains: each chain's
        deliveries go to one destination for one patient, to be sent in the order given,
        stopping at the first that fails."""
        now = now or now_utc()
        token = uuid.uuid4().hex
        with self._engine.begin() as connection:
            candidates = self._candidates(connection, limit, now)
            if not candidates:
                return []
            taken = self._heads_of_chains(connection, candidates)
            if taken:
                connection.execute(
                    update(_DELIVERIES).where(_DELIVERIES.c.id.in_([c.id for c in taken]))
                    .values(status="in_flight", next_attempt_at=now + self._lease,
                            claim_token=token, updated_at=now))
        return _chains([replace(c, claim_token=token) for c in taken])

    def renew(self, tokens: Sequence[str], now: datetime | None = None) -> dict[str, int]:
        """Extend the leases of these claims from ``now``; how many deliveries each
        still holds in flight (a claim that holds none is not in the answer)."""
        if not tokens:
            return {}
        now = now or now_utc()
        held = _in_flight_under(list(tokens))
        with self._engine.begin() as connection:
            connection.execute(update(_DELIVERIES).where(held)
                               .values(next_attempt_at=now + self._lease))
            return {token: int(count) for token, count in connection.execute(
                select(_DELIVERIES.c.claim_token, func.count())
                .where(held).group_by(_DELIVERIES.c.claim_token))}

    def _candidates(self, connection: Connection, limit: int, now: datetime) -> list[Claimed]:
        """The oldest deliveries due now, in order: pending ones, retries whose time has
        come and claims that lapsed, none behind an earlier delivery of its chain that
        must still wait, nor behind a message of its patient still waiting to be routed."""
        due = _in(_DELIVERIES.c.status, WAITING) & (_DELIVERIES.c.next_attempt_at <= now)
        rows: list[Any] = []
        # Two walks, so each follows its own index in order instead of sorting a backlog.
        for condition in (_ready(), due):
            rows.extend(self._movable(connection, condition, limit, now))
        rows.sort(key=lambda row: (row.sequence, row.id))
        return [_claimed(row) for row in rows[:limit]]

    def _movable(self, connection: Connection, condition: ColumnElement[bool], limit: int,
                 now: datetime) -> list[Any]:
        """Up to ``limit`` of the oldest deliveries meeting ``condition`` whose chain can
        move now. Those found waiting behind a retry or a hold are parked on the way
        (until the retry, or for HOLD_RECHECK), so that no later claim walks them while
        their head waits: each is looked at once, however long the destination is down."""
        movable: list[Any] = []
        after: tuple[int, int] | None = None
        # A backlog found all at once is parked over several claims: one claim holds
        # the store (SQLite's writer lock, and with it every ACK) only so long.
        for _ in range(PARK_WALKS_PER_CLAIM):
            query = self._candidates_query(condition, limit, now, after)
            if self._postgres:
                query = query.with_for_update(of=_DELIVERIES, skip_locked=True)
            rows = connection.execute(query).all()
            parked = [{"delivery_key": row.id, "until": _parked_until(row, now)}
                      for row in rows if row.parks or row.dead_ahead]
            movable.extend(row for row in rows
                           if not row.parks and not row.dead_ahead and not row.in_flight_ahead)
            if parked:
                connection.execute(_PARK, parked)
            if len(rows) < limit or not parked or len(movable) >= limit:
                break
            after = (rows[-1].sequence, rows[-1].id)
        return movable[:limit]

    @staticmethod
    def _candidates_query(condition: ColumnElement[bool], limit: int, now: datetime,
                          after: tuple[int, int] | None) -> Select[Any]:
        """The oldest ``limit`` deliveries meeting ``condition`` (after ``after``, a
        (sequence, id)), none behind an earlier message of the same patient still waiting
        to be routed; each with what its chain's earlier deliveries say: ``parks`` when
        one is held or retrying later (and ``parked_until``, the earliest such retry),
        ``dead_ahead`` when a dead letter holds the chain, ``in_flight_ahead`` when one
        is being sent. A delivery that has none of these starts or continues a run that
        can move now, whatever waits ahead of it in the table. A delivery for no patient
        has no chain to keep in order."""
        ahead = _DELIVERIES.alias("ahead")
        chain = (ahead.c.destination == _DELIVERIES.c.destination,
                 ahead.c.patient_key == _DELIVERIES.c.patient_key,
                 _in(ahead.c.status, STALLING),
                 tuple_(ahead.c.sequence, ahead.c.id) < tuple_(_DELIVERIES.c.sequence,
                                                               _DELIVERIES.c.id))
        retry_later = (ahead.c.status == "retrying") & (ahead.c.next_attempt_at > now)
        parks = select(ahead.c.id).where(*chain, (ahead.c.status == "held") | retry_later)
        until = select(func.min(ahead.c.next_attempt_at)).where(*chain, retry_later)
        sending = select(ahead.c.id).where(*chain, ahead.c.status == "in_flight",
                                           ahead.c.next_attempt_at > now)
        unrouted = _JOURNAL.alias("unrouted")
        waiting = select(unrouted.c.id).where(
            unrouted.c.patient_key == _DELIVERIES.c.patient_key,
            _in(unrouted.c.status, UNROUTED),
            unrouted.c.id < _DELIVERIES.c.sequence)
        query = (select(*_CLAIM_COLUMNS, _JOURNAL.c.message_id, _JOURNAL.c.received_at,
                        parks.exists().label("parks"),
                        until.scalar_subquery().label("parked_until"),
                        held_by_dead_letter(_DELIVERIES).label("dead_ahead"),
                        sending.exists().label("in_flight_ahead"))
                 .join(_JOURNAL, _JOURNAL.c.id == _DELIVERIES.c.journal_id)
                 .where(condition, ~waiting.exists())
                 .order_by(_DELIVERIES.c.sequence, _DELIVERIES.c.id).limit(limit))
        if after is not None:
            query = query.where(tuple_(_DELIVERIES.c.sequence, _DELIVERIES.c.id)
                                > tuple_(literal(after[0]), literal(after[1])))
        return query

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
                .values(status="pending", next_attempt_at=None, claim_token=None,
                        updated_at=now_utc()))
            return int(result.rowcount or 0)

    # ---- outcomes ----------------------------------------------------------------------

    def record(self, attempts: Sequence[Attempt], unsent: Sequence[Claimed],
               rule_set: RuleSet) -> Recorded:
        """Record ``attempts`` and give back ``unsent`` (claimed, not tried: behind a
        failure in their chain) in one transaction; each only while its claim still
        holds it (an outcome under a claim that lapsed and was taken over is fenced)."""
        recorded = Recorded([], [], [])
        with self._engine.begin() as connection:
            held = self._still_held(connection, [*(a.claimed for a in attempts), *unsent])
            mine = [c for c in unsent if c.id in held]
            if mine:  # first, so that a failure before them parks them
                connection.execute(
                    update(_DELIVERIES).where(_DELIVERIES.c.id.in_([c.id for c in mine]))
                    .values(status="pending", next_attempt_at=None, claim_token=None,
                            updated_at=now_utc()))
            for attempt in attempts:
                if attempt.claimed.id not in held:
                    recorded.fenced.append(attempt)
                elif attempt.failure is None:
                    recorded.delivered.append(attempt)
            if recorded.delivered:
                # One statement for the batch: most outcomes are deliveries.
                connection.execute(_DELIVERED, [
                    {"delivery_key": a.claimed.id, "made": a.claimed.attempts + 1,
                     "at": a.at, "token": a.claimed.claim_token}
                    for a in recorded.delivered])
            for attempt in attempts:
                if attempt.failure is None or attempt.claimed.id not in held:
                    continue
                if self._failed(connection, attempt, rule_set):
                    recorded.retried.append(attempt)
                else:
                    recorded.dead_lettered.append(attempt)
        for attempt in recorded.fenced:
            # Ids only: the delivery is someone else's now, and theirs is the outcome.
            log.warning("delivery outcome fenced out: its claim lapsed and was taken over",
                        extra={"delivery_id": attempt.claimed.id,
                               "connection": attempt.claimed.destination})
        return recorded

    def _still_held(self, connection: Connection, claimed: Sequence[Claimed]) -> set[int]:
        """Which of these deliveries are still in flight under the claim that took them,
        locked (on PostgreSQL) until the outcome is written."""
        if not claimed:
            return set()
        query = select(_DELIVERIES.c.id, _DELIVERIES.c.claim_token).where(
            _DELIVERIES.c.id.in_([c.id for c in claimed]),
            _DELIVERIES.c.status == "in_flight")
        if self._postgres:
            query = query.with_for_update(of=_DELIVERIES)
        tokens = {c.id: c.claim_token for c in claimed}
        return {row.id for row in connection.execute(query)
                if row.claim_token is not None and row.claim_token == tokens[row.id]}

    def _failed(self, connection: Connection, attempt: Attempt, rule_set: RuleSet) -> bool:
        """Schedule a retry, or dead-letter the delivery; True when it will be retried."""
        failure, claimed = attempt.failure, attempt.claimed
        assert failure is not None
        policy = rule_set.policies.resolve(claimed.destination, failure.error_class)
        made = claimed.attempts + 1
        changes: dict[str, Any] = {
            "attempts": made, "error_class": str(failure.error_class),
            "last_error": storable_text(failure.reason), "claim_token": None,
            "updated_at": attempt.at}
        retry = failure.error_class not in NEVER_RETRIED and policy.should_retry(made)
        holds = (not retry and claimed.patient_key is not None
                 and strict(rule_set, claimed.destination))
        # Ids and classes only: a reason is meant to be free of PHI, but it comes from
        # the destination's side, and the log goes further than the store.
        log.warning("delivery failed", extra={
            "delivery_id": claimed.id, "connection": claimed.destination,
            "error_class": str(failure.error_class), "attempt": made,
            "outcome": "retrying" if retry else "dead-lettered"})
        if retry:
            changes["status"] = "retrying"
            changes["next_attempt_at"] = attempt.at + timedelta(
                seconds=policy.delay(made, self._rng))
        else:
            changes["status"] = "dead"
            changes["next_attempt_at"] = None
            connection.execute(_EXCEPTIONS.insert().values(
                **dead_letter(claimed, failure, policy, made, attempt.at, rule_set)))
            if holds and claimed.patient_key is not None:
                hold_behind_dead_letter(connection, claimed.id, claimed.journal_id,
                                        claimed.destination, claimed.patient_key,
                                        claimed.sequence, attempt.at)
        connection.execute(
            update(_DELIVERIES).where(_DELIVERIES.c.id == claimed.id).values(**changes))
        if (retry or holds) and claimed.patient_key is not None:
            # Its chain waits for the retry, or for an operator to release the dead
            # letter: park what is queued behind it until then.
            connection.execute(
                update(_DELIVERIES).where(
                    _DELIVERIES.c.destination == claimed.destination,
                    _DELIVERIES.c.patient_key == claimed.patient_key,
                    _in(_DELIVERIES.c.status, BLOCKING), _DELIVERIES.c.status == "pending",
                    tuple_(_DELIVERIES.c.sequence, _DELIVERIES.c.id)
                    > tuple_(literal(claimed.sequence), literal(claimed.id)))
                .values(next_attempt_at=changes["next_attempt_at"] if retry
                        else attempt.at + DEAD_RECHECK))
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
                   f"{storable_text(failure.reason)}",
        # What the destination said (a FHIR OperationOutcome), kept with the item only.
        "detail": {**failure.detail, "attempts": attempts, "policy": str(policy.source),
                   "idempotency_key": claimed.idempotency_key,
                   "page_technical_owner": bool(escalation and escalation.page_technical_owner)},
        "recovery_procedure": connection.recovery_procedure if connection else None,
        "created_at": at, "resolved_at": None,
        "escalate_at": at + timedelta(seconds=escalation.after) if escalation else None,
        "escalate_to": str(escalation.notify_role) if escalation else None,
        "escalated_at": None,
    }


def unpark_behind(connection: Connection, delivery_ids: Sequence[int]) -> None:
    """Make the deliveries parked behind these (whose hold was just decided, or whose
    dead letter was released) ready again, rather than wait out HOLD_RECHECK."""
    if not delivery_ids:
        return
    decided = _DELIVERIES.alias("decided")
    behind = select(decided.c.id).where(
        decided.c.id.in_(list(delivery_ids)),
        decided.c.destination == _DELIVERIES.c.destination,
        decided.c.patient_key == _DELIVERIES.c.patient_key,
        decided.c.sequence <= _DELIVERIES.c.sequence)
    connection.execute(
        update(_DELIVERIES).where(_in(_DELIVERIES.c.status, WAITING),
                                  _DELIVERIES.c.status == "pending",
                                  _DELIVERIES.c.next_attempt_at.is_not(None), behind.exists())
        .values(next_attempt_at=None))


def _in_flight_under(tokens: list[str]) -> ColumnElement[bool]:
    return (_DELIVERIES.c.status == "in_flight") & _DELIVERIES.c.claim_token.in_(tokens)


def _parked_until(row: Any, now: datetime) -> datetime:
    """When a claim should look again at a delivery it found waiting: at the retry
    ahead of it, or after a while behind a hold or a dead letter (a decision or an
    operator's action unparks it sooner)."""
    if row.dead_ahead:
        return now + DEAD_RECHECK
    return row.parked_until or now + HOLD_RECHECK  # type: ignore[no-any-return]


def _ready() -> ColumnElement[bool]:
    """Pending and not parked, as ix_deliveries_ready's WHERE says it."""
    return (_DELIVERIES.c.status == literal("pending", literal_execute=True)) & (
        _DELIVERIES.c.next_attempt_at.is_(None))


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
