"""Claims are fenced, on SQLite and PostgreSQL: an outcome counts only while its claim
holds, so a worker whose lease lapsed cannot overwrite what the worker that took the
delivery over recorded, nor give back what it no longer holds."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.connectors.sink import DeliveryFailed
from engine.journal import now_utc
from engine.outbox import Attempt, Outbox
from engine.rules.exception_policy import ErrorClass
from engine.store.models import Delivery, ExceptionItem
from tests.engine.store.test_outbox import RULES, deliveries, journal, store

LEASE = 60


def rows(engine) -> dict[int, tuple[Any, ...]]:
    """Every delivery's recorded state."""
    with Session(engine) as session:
        return {d.id: (d.status, d.attempts, d.next_attempt_at, d.delivered_at,
                       d.error_class, d.last_error, d.updated_at)
                for d in session.scalars(select(Delivery))}


def exception_count(engine) -> int:
    with Session(engine) as session:
        return len(list(session.scalars(select(ExceptionItem))))


def lapsed_and_taken_over(engine) -> tuple[Outbox, Outbox, list[Any], list[Any]]:
    """A chain claimed by ``first``, whose lease lapsed, then claimed by ``second``."""
    first = store(engine)
    second = Outbox(engine, lease=LEASE, rng=random.Random(7))
    deliveries(engine, journal(engine, 2, "p1"), patient="p1")
    [mine] = first.claim(limit=10)
    [theirs] = second.claim(limit=10, now=now_utc() + timedelta(seconds=LEASE + 1))
    assert [c.id for c in mine] == [c.id for c in theirs]
    return first, second, mine, theirs


def test_a_late_outcome_of_a_lapsed_claim_changes_no_row(engine):
    first, second, mine, theirs = lapsed_and_taken_over(engine)
    second.record([Attempt(c, now_utc()) for c in theirs], [], RULES)
    before = rows(engine)
    assert {state[0] for state in before.values()} == {"delivered"}
    late = first.record(
        [Attempt(mine[0], now_utc(), DeliveryFailed(ErrorClass.TRANSPORT_ERROR, "timed out"))],
        mine[1:], RULES)
    assert rows(engine) == before  # neither the failure nor the give-back took
    assert exception_count(engine) == 0  # nor was it dead-lettered
    assert late.retried == late.dead_lettered == [] and len(late.fenced) == 1


def test_a_late_delivery_does_not_end_a_claim_another_worker_holds(engine):
    first, second, mine, theirs = lapsed_and_taken_over(engine)
    before = rows(engine)
    late = first.record([Attempt(c, now_utc()) for c in mine], [], RULES)
    assert rows(engine) == before  # still in flight, under the second claim
    assert late.delivered == [] and len(late.fenced) == 2
    taken = second.record([Attempt(c, now_utc()) for c in theirs], [], RULES)
    assert len(taken.delivered) == 2
    assert {state[0] for state in rows(engine).values()} == {"delivered"}


def test_a_held_claim_is_renewed_and_a_lapsed_one_is_not(engine):
    first, second, mine, theirs = lapsed_and_taken_over(engine)
    later = now_utc() + timedelta(seconds=2 * LEASE)
    assert first.renew([mine[0].claim_token], later) == {}
    held = second.renew([theirs[0].claim_token], later)
    assert held == {theirs[0].claim_token: 2}
    assert {state[2] for state in rows(engine).values()} == {later + timedelta(seconds=LEASE)}
    # The renewed lease keeps the chain from a third claimer until it lapses again.
    third = Outbox(engine, lease=LEASE)
    assert third.claim(limit=10, now=later + timedelta(seconds=LEASE - 1)) == []
