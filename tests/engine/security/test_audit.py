"""The audit chain: every event covers the one before with a keyed MAC, tampering is
found, concurrent writers cannot fork it, and committed events are anchored outside the
database. (How each kind of tampering is named: test_audit_verify.py.)"""

from __future__ import annotations

import os
import stat
import threading

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from engine.security.audit import AuditError, AuditLog, event_mac
from engine.security.audit_anchor import (
    ANCHOR_DIR_ENV,
    ANCHOR_ENV,
    AuditAnchor,
    database_digest,
    default_anchor,
)
from engine.security.audit_key import KEY_ENV, KEY_FILE_ENV, AuditKeyError, audit_key
from engine.security.users import UserStore
from engine.store.migrate import upgrade
from engine.store.models import AuditEvent
from tests.store_template import migrated


@pytest.fixture
def audit(engine):
    migrated(engine)
    return AuditLog(engine)


def append(engine, audit, count, actor="tester"):
    for number in range(count):
        with Session(engine) as session, session.begin():
            audit.record(session, actor, "test.event", "thing", str(number), {"n": number})


def chain(engine):
    with Session(engine) as session:
        return session.execute(select(AuditEvent.id, AuditEvent.prev_hash, AuditEvent.hash)
                               .order_by(AuditEvent.id)).all()


def heads(engine):
    return [(event_id, event_hash) for event_id, _prev, event_hash in chain(engine)]


def anchored(audit):
    return list(audit.anchor.heads(audit.anchor.size()))


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
            assert event.hash == event_mac(audit_key(), event)


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
    ("before_hash", "0" * 64),
    ("after_hash", "1" * 64),
    ("reason", "no reason was given"),
])
def test_an_event_altered_in_the_database_is_reported(engine, audit, column, value):
    append(engine, audit, 5)
    altered = chain(engine)[2].id
    with Session(engine) as session, session.begin():
        session.execute(update(AuditEvent).where(AuditEvent.id == altered)
                        .values({column: value}))
    assert audit.verify() == [str(altered)]


def test_rehashing_an_altered_event_without_the_key_is_reported_there(engine, audit):
    append(engine, audit, 5)
    events = chain(engine)
    with Session(engine) as session, session.begin():
        event = session.get(AuditEvent, events[1].id)
        event.detail = {"n": 42}
        event.hash = event_mac(b"a guess at the key, which is not it", event)
    # It fails its MAC, and the next event follows the hash it had.
    assert audit.verify() == [str(events[1].id), str(events[2].id)]
    assert (audit.check().kind, audit.check().event_id) == ("edited", events[1].id)


def test_a_deleted_event_is_reported_by_its_anchor_and_at_the_next_one(engine, audit):
    append(engine, audit, 5)
    events = chain(engine)
    with Session(engine) as session, session.begin():
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[3].id))
    assert audit.verify() == [str(events[3].id), str(events[4].id)]


def test_a_deleted_event_the_anchor_does_not_hold_is_reported_at_the_next_one(
        engine, audit, tmp_path):
    append(engine, audit, 5)
    events = chain(engine)
    with Session(engine) as session, session.begin():
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[3].id))
    unanchored = AuditLog(engine, anchor=AuditAnchor(tmp_path / "another-host.log"))
    assert unanchored.verify() == [str(events[4].id)]


def test_a_deleted_first_event_is_reported_at_the_new_first(engine, audit, tmp_path):
    append(engine, audit, 3)
    events = chain(engine)
    with Session(engine) as session, session.begin():
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[0].id))
    assert audit.verify() == [str(events[0].id), str(events[1].id)]
    unanchored = AuditLog(engine, anchor=AuditAnchor(tmp_path / "another-host.log"))
    assert unanchored.verify() == [str(events[1].id)]


def test_an_event_rolled_back_with_its_change_is_not_kept_nor_anchored(engine, audit):
    append(engine, audit, 2)
    with Session(engine) as session:
        audit.record(session, "tester", "test.event", None, None, None)
        session.rollback()
    assert anchored(audit) == heads(engine)
    append(engine, audit, 1)
    assert_one_chain(engine, 3)
    assert audit.verify() == []
    assert anchored(audit) == heads(engine)


def test_an_event_in_a_failed_transaction_is_not_anchored(engine, audit):
    append(engine, audit, 1)
    with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
        audit.record(session, "tester", "test.event", None, None, None)
        raise RuntimeError("the change failed")
    assert len(anchored(audit)) == 1
    assert anchored(audit) == heads(engine)


def test_an_event_in_a_rolled_back_savepoint_is_not_anchored(engine, audit):
    with Session(engine) as session, session.begin():
        kept = audit.record(session, "tester", "test.kept", None, None, None)
        savepoint = session.begin_nested()
        audit.record(session, "tester", "test.undone", None, None, None)
        savepoint.rollback()
        kept_head = (kept.id, kept.hash)
    assert anchored(audit) == [kept_head] == heads(engine)


def test_events_are_anchored_only_when_the_outer_transaction_commits(engine, audit):
    with Session(engine) as session:
        with session.begin_nested():
            audit.record(session, "tester", "test.event", None, None, None)
        assert anchored(audit) == []  # the savepoint was released, nothing committed yet
        session.rollback()
    assert anchored(audit) == [] == heads(engine)


def test_a_transaction_anchors_each_of_its_events_after_commit(engine, audit):
    with Session(engine) as session, session.begin():
        for number in range(3):
            audit.record(session, "tester", "test.event", "thing", str(number), None)
        assert anchored(audit) == []
    assert len(anchored(audit)) == 3
    assert anchored(audit) == heads(engine)


def test_a_change_is_recorded_with_its_content_hashes_and_reason(engine, audit):
    with Session(engine) as session, session.begin():
        audit.record(session, "approver", "rules.publish", "rule_set_version", "4",
                     {"status": "published"}, before_hash="a" * 64, after_hash="b" * 64,
                     reason="CHG-1234: new lab feed")
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent)).one()
        assert (event.before_hash, event.after_hash, event.reason) == (
            "a" * 64, "b" * 64, "CHG-1234: new lab feed")
        assert event.hash == event_mac(audit_key(), event)
    assert audit.verify() == []


def test_a_content_hash_must_fit_its_column(engine, audit):
    with Session(engine) as session, pytest.raises(AuditError) as raised:
        audit.record(session, "tester", "test.event", None, None, None, after_hash="f" * 65)
    assert str(raised.value) == "audit after_hash must be at most 64 characters"


def test_a_mac_depends_on_the_key(engine, audit):
    append(engine, audit, 1)
    with Session(engine) as session:
        event = session.scalars(select(AuditEvent)).one()
        assert event_mac(b"k" * 32, event) != event_mac(b"K" * 32, event)
        assert event.hash == event_mac(audit_key(), event)


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
    assert sorted(anchored(audit)) == heads(engine)  # appended by threads in any order
    with Session(engine) as session:
        actors = session.scalar(select(func.count(func.distinct(AuditEvent.actor))))
    assert actors == writers


def test_an_anchor_that_cannot_be_written_is_logged_and_the_change_kept(
        engine, tmp_path, caplog):
    upgrade(engine)
    (tmp_path / "not-a-folder").write_text("")
    audit = AuditLog(engine, anchor=AuditAnchor(tmp_path / "not-a-folder" / "anchor.log"))
    append(engine, audit, 1)
    assert len(chain(engine)) == 1
    [logged] = [r for r in caplog.records if r.name == "switchboard.audit"]
    assert logged.levelname == "ERROR"
    assert logged.getMessage().startswith(
        f"audit events [{chain(engine)[0].id}] are committed but not anchored in ")


# ---- the key ---------------------------------------------------------------------------

def test_a_key_in_the_environment_is_used_as_text():
    key = "é" + "k" * 31
    assert audit_key({KEY_ENV: key}) == key.encode("utf-8")


@pytest.mark.parametrize("environ", [{KEY_ENV: "k" * 31}, {KEY_ENV: ""}])
def test_a_key_in_the_environment_needs_32_characters(environ):
    with pytest.raises(AuditKeyError) as raised:
        audit_key(environ)
    assert str(raised.value) == (
        f"SWITCHBOARD_AUDIT_KEY holds {len(environ[KEY_ENV])} characters; the audit key "
        "needs at least 32. Set a longer random secret, the same on every host")


def test_a_key_file_is_used_byte_for_byte(tmp_path):
    (tmp_path / "key").write_bytes(b"\x00\xff" * 16 + b"\n")
    environ = {KEY_FILE_ENV: str(tmp_path / "key"), "SWITCHBOARD_INSTANCE": str(tmp_path)}
    assert audit_key(environ) == b"\x00\xff" * 16 + b"\n"
    assert not (tmp_path / "audit.key").exists()


def test_a_short_key_file_is_refused(tmp_path):
    (tmp_path / "key").write_bytes(b"k" * 31)
    with pytest.raises(AuditKeyError) as raised:
        audit_key({KEY_FILE_ENV: str(tmp_path / "key")})
    assert str(raised.value) == (f"the audit key file {tmp_path / 'key'} holds 31 bytes; "
                                 "the key needs at least 32")


def test_a_missing_key_file_is_refused(tmp_path):
    with pytest.raises(AuditKeyError) as raised:
        audit_key({KEY_FILE_ENV: str(tmp_path / "nowhere")})
    assert str(raised.value) == (
        f"cannot read the audit key file {tmp_path / 'nowhere'}: No such file or directory. "
        "Check SWITCHBOARD_AUDIT_KEY_FILE and the file's permissions")


def test_without_configuration_a_private_key_is_made_in_the_instance_folder(tmp_path):
    environ = {"SWITCHBOARD_INSTANCE": str(tmp_path / "instance")}
    key = audit_key(environ)
    path = tmp_path / "instance" / "audit.key"
    assert len(key) == 32
    assert path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert audit_key(environ) == key
    assert os.listdir(path.parent) == ["audit.key"]  # no temporary file left behind


def test_processes_making_the_instance_key_at_once_all_use_one(tmp_path):
    environ = {"SWITCHBOARD_INSTANCE": str(tmp_path)}
    makers = 8
    start = threading.Barrier(makers)
    keys: list[bytes] = []

    def make() -> None:
        start.wait()
        keys.append(audit_key(environ))

    threads = [threading.Thread(target=make) for _ in range(makers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == makers
    assert set(keys) == {(tmp_path / "audit.key").read_bytes()}
    assert os.listdir(tmp_path) == ["audit.key"]


def test_checking_a_chain_never_makes_a_key(tmp_path):
    with pytest.raises(AuditKeyError) as raised:
        audit_key({"SWITCHBOARD_INSTANCE": str(tmp_path)}, create=False)
    assert str(raised.value).startswith(f"no audit key: {tmp_path / 'audit.key'} does not exist")
    assert not (tmp_path / "audit.key").exists()


# ---- the anchor ------------------------------------------------------------------------

def test_the_anchor_file_is_named_by_the_environment_then_its_folder_then_the_instance(
        tmp_path):
    url = make_url("postgresql+psycopg://switchboard@db.example:5432/switchboard")
    file_name = f"audit-anchor-{database_digest(url)}.log"
    instance = {"SWITCHBOARD_INSTANCE": str(tmp_path / "instance")}
    folder = {**instance, ANCHOR_DIR_ENV: str(tmp_path / "anchors")}
    named = {**folder, ANCHOR_ENV: str(tmp_path / "audit.log")}
    assert default_anchor(url, named).path == tmp_path / "audit.log"
    assert default_anchor(url, folder).path == tmp_path / "anchors" / file_name
    assert default_anchor(url, instance).path == tmp_path / "instance" / file_name
    assert len(database_digest(url)) == 16


def test_one_database_has_one_anchor_whoever_connects_to_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    same = [
        "postgresql://db.example:5432/switchboard",
        "postgresql+psycopg://app:secret@db.example:5432/switchboard",
        "postgresql://admin:other@db.example:5432/switchboard?sslmode=require",
    ]
    assert len({database_digest(make_url(url)) for url in same}) == 1
    assert database_digest(make_url("sqlite:///instance/switchboard.db")) == database_digest(
        make_url(f"sqlite:///{tmp_path}/instance/switchboard.db"))
    different = [
        "postgresql://db.example:5432/switchboard",
        "postgresql://db.example:5432/switchboard_test",
        "postgresql://db2.example:5432/switchboard",
        "postgresql://db.example:5433/switchboard",
        f"sqlite:///{tmp_path}/switchboard.db",
    ]
    assert len({database_digest(make_url(url)) for url in different}) == len(different)


def test_the_anchor_reads_whole_heads_within_its_limit(tmp_path):
    anchor = AuditAnchor(tmp_path / "anchor.log")
    assert anchor.size() == 0
    assert list(anchor.heads(anchor.size())) == []
    anchor.append([(1, "a" * 64), (2, "b" * 64)])
    limit = anchor.size()
    with (tmp_path / "anchor.log").open("ab") as file:
        file.write(b"3 " + b"c" * 30)  # torn by a crash ...
        file.write(b"4 " + b"d" * 64 + b"\n")  # ... and the next head lost with it
        file.write(b"not a head\n")
    anchor.append([(5, "e" * 64)])
    assert list(anchor.heads(limit)) == [(1, "a" * 64), (2, "b" * 64)]
    assert list(anchor.heads(anchor.size())) == [(1, "a" * 64), (2, "b" * 64), (5, "e" * 64)]
    assert list(anchor.heads(limit - 1)) == [(1, "a" * 64)]
