"""The audit chain: every event covers the one before, tampering is found, and
concurrent writers cannot fork it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from engine.security.audit import AuditError, AuditLog, event_hash
from engine.security.users import UserStore
from engine.store.migrate import upgrade
from engine.store.models import AuditEvent


@pytest.fixture
def audit(engine):
    upgrade(engine)
    return AuditLog(engine)


def append(engine, audit, count, actor="tester"):
    for number in range(count):
        with Session(engine) as session, session.begin():
            audit.record(session, actor, "test.event", "thing", str(number), {"n": number})


def chain(engine):
    with Session(engine) as session:
        return session.execute(select(AuditEvent.id, AuditEvent.prev_hash, AuditEvent.hash)
                               .order_by(AuditEvent.id)).all()


def assert_one_chain(engine, expected_events):
    events = chain(engine)
    assert len(events) == expected_events
    assert [prev for _id, prev, _hash in events] == [None] + [h for _id, _p, h in events[:-1]]


def test_an_empty_log_verifies(audit):
    assert audit.verify() == []


def test_the_first_event_has_no_predecessor_and_each_covers_the_last(engine, audit):
    append(engine, audit, 3)
    assert_one_chain(engine, 3)
    with Session(engine) as session:
        for event in session.scalars(select(AuditEvent)):
            assert event.hash == event_hash(event)


def test_the_chain_holds_after_many_changes(engine, audit):
    users = UserStore(engine)
    for number in range(20):
        users.add(f"user{number}", "analyst", "admin")
        users.issue_token(f"user{number}", "admin")
        if number % 3 == 0:
            users.disable(f"user{number}", "admin")
    append(engine, audit, 10)
    assert_one_chain(engine, 20 + 20 + 7 + 10)
    assert audit.verify() == []


@pytest.mark.parametrize("column, value", [
    ("detail", {"n": 99}),
    ("actor", "intruder"),
    ("action", "test.other"),
    ("target_id", "7"),
    ("target_type", None),
])
def test_an_event_altered_in_the_database_is_reported(engine, audit, column, value):
    append(engine, audit, 5)
    altered = chain(engine)[2].id
    with Session(engine) as session, session.begin():
        session.execute(update(AuditEvent).where(AuditEvent.id == altered)
                        .values({column: value}))
    assert audit.verify() == [str(altered)]


def test_rehashing_an_altered_event_is_reported_at_the_next_one(engine, audit):
    append(engine, audit, 5)
    events = chain(engine)
    with Session(engine) as session, session.begin():
        event = session.get(AuditEvent, events[1].id)
        event.detail = {"n": 42}
        event.hash = event_hash(event)
    assert audit.verify() == [str(events[2].id)]


def test_a_deleted_event_is_reported_at_the_next_one(engine, audit):
    append(engine, audit, 5)
    events = chain(engine)
    with Session(engine) as session, session.begin():
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[3].id))
    assert audit.verify() == [str(events[4].id)]


def test_a_deleted_first_event_is_reported_at_the_new_first(engine, audit):
    append(engine, audit, 3)
    events = chain(engine)
    with Session(engine) as session, session.begin():
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[0].id))
    assert audit.verify() == [str(events[1].id)]


def test_an_event_rolled_back_with_its_change_is_not_kept(engine, audit):
    append(engine, audit, 2)
    with Session(engine) as session:
        audit.record(session, "tester", "test.event", None, None, None)
        session.rollback()
    append(engine, audit, 1)
    assert_one_chain(engine, 3)
    assert audit.verify() == []


@pytest.mark.parametrize("actor", ["", "a" * 65])
def test_an_actor_must_be_named_in_64_characters(engine, audit, actor):
    with Session(engine) as session, pytest.raises(AuditError) as raised:
        audit.record(session, actor, "test.event", None, None, None)
    assert str(raised.value) == f"audit actor {actor!r} must be 1 to 64 characters"


def test_concurrent_writers_keep_one_unbroken_chain(engine, audit):
    writers, each = 4, 25
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(number: int) -> None:
        try:
            start.wait()
            append(engine, audit, each, actor=f"writer{number}")
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert_one_chain(engine, writers * each)
    assert audit.verify() == []
    with Session(engine) as session:
        actors = session.scalar(select(func.count(func.distinct(AuditEvent.actor))))
    assert actors == writers
