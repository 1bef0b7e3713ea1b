"""``switchboard audit verify`` names the first edited, inserted or deleted event, a cut
tail and a recomputed chain, on SQLite and PostgreSQL, from the chain and its anchor."""

from __future__ import annotations

import argparse
import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from engine.commands.audit import add_audit_commands, describe
from engine.security.audit import AuditLog, event_mac
from engine.security.audit_anchor import AuditAnchor
from engine.security.audit_key import audit_key
from engine.store.migrate import upgrade
from engine.store.models import AuditEvent
from tests.store_template import migrated

EVENTS = 6
REPLACED = "the anchor recorded another hash for it: the chain was replaced from here or before"


@pytest.fixture
def audit(engine):
    migrated(engine)
    log = AuditLog(engine)
    for number in range(EVENTS):
        with Session(engine) as session, session.begin():
            log.record(session, "tester", "test.event", "thing", str(number), {"n": number},
                       reason=f"change {number}")
    return log


@pytest.fixture
def ids(engine, audit):
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))


def change(engine, *statements):
    with Session(engine) as session, session.begin():
        for statement in statements:
            session.execute(statement)


def event(engine, event_id):
    with Session(engine) as session:
        return session.get(AuditEvent, event_id)


def forge(engine, event_id, follows):
    """An event written by someone without the key: it follows a real event's hash and
    carries a hash that looks like one."""
    with Session(engine) as session, session.begin():
        session.add(AuditEvent(
            id=event_id, at=datetime(2024, 5, 1, tzinfo=UTC), actor="intruder",
            action="users.add", target_type="user", target_id="backdoor", detail=None,
            prev_hash=follows, hash=hashlib.sha256(b"plausible").hexdigest()))


def test_an_intact_chain_and_its_anchor_agree(audit, ids):
    verdict = audit.check()
    assert (verdict.ok, verdict.checked, verdict.anchor_head) == (True, EVENTS, ids[-1])
    assert (verdict.kind, verdict.event_id, verdict.problem) == (None, None, None)
    assert describe(verdict) == (f"audit chain intact: {EVENTS} events, "
                                 f"anchor head {ids[-1]} matches")


def test_an_empty_chain_is_intact(engine):
    upgrade(engine)
    verdict = AuditLog(engine).check()
    assert (verdict.ok, verdict.checked, verdict.anchor_head) == (True, 0, None)


def test_an_edited_event_is_named(engine, audit, ids):
    change(engine, update(AuditEvent).where(AuditEvent.id == ids[2])
           .values(reason="a better story"))
    assert_named(audit, ids[2], "edited", "its content no longer matches its MAC")


def test_an_edited_event_whose_hash_was_replaced_is_named(engine, audit, ids):
    change(engine, update(AuditEvent).where(AuditEvent.id == ids[2])
           .values(actor="intruder", hash="0" * 64))
    assert_named(audit, ids[2], "edited", "its content no longer matches its MAC")
    assert audit.verify() == [str(ids[2]), str(ids[3])]


def test_a_deleted_event_is_named_by_the_anchor(engine, audit, ids):
    change(engine, delete(AuditEvent).where(AuditEvent.id == ids[2]))
    assert_named(audit, ids[2], "deleted",
                 "the anchor names it but it is no longer in the table")


def test_a_deleted_event_the_anchor_does_not_hold_is_named_by_the_next(
        engine, audit, ids, tmp_path):
    change(engine, delete(AuditEvent).where(AuditEvent.id == ids[2]))
    elsewhere = AuditLog(engine, anchor=AuditAnchor(tmp_path / "another-host.log"))
    assert_named(elsewhere, ids[3], "deleted", "an event before it is missing: it "
                 f"follows a hash that event {ids[1]} does not have")


def test_a_deleted_first_event_is_named_by_the_new_first(engine, audit, ids, tmp_path):
    change(engine, delete(AuditEvent).where(AuditEvent.id == ids[0]))
    elsewhere = AuditLog(engine, anchor=AuditAnchor(tmp_path / "another-host.log"))
    assert_named(elsewhere, ids[1], "deleted", "an event before it is missing: it "
                 "follows a hash that nothing (it is first) does not have")


def test_an_event_inserted_into_the_chain_is_named(engine, audit, ids):
    # Make room, as a gap in a PostgreSQL sequence would: ids are not in the chain.
    change(engine, update(AuditEvent).where(AuditEvent.id >= ids[3])
           .values(id=AuditEvent.id + 100))
    forge(engine, ids[3], follows=event(engine, ids[2]).hash)
    assert_named(audit, ids[3], "inserted", "the event after it follows the one before "
                 "it: it does not belong to the chain")
    assert audit.verify() == [str(ids[3])]


def test_an_event_inserted_before_the_first_is_named(engine, audit, ids):
    change(engine, update(AuditEvent).values(id=AuditEvent.id + 100))
    forge(engine, ids[0], follows=None)
    assert_named(audit, ids[0], "inserted", "the event after it follows the one before "
                 "it: it does not belong to the chain")


def test_an_event_added_after_the_anchored_head_is_named_inserted(engine, audit, ids):
    forge(engine, ids[-1] + 1, follows=event(engine, ids[-1]).hash)
    assert_named(audit, ids[-1] + 1, "inserted", "it fails its MAC and comes after the "
                 f"anchor's last head, event {ids[-1]}")


def test_a_truncated_tail_is_named(engine, audit, ids):
    change(engine, delete(AuditEvent).where(AuditEvent.id >= ids[-2]))
    assert_named(audit, ids[-2], "truncated",
                 f"the anchor names it but the table ends at event {ids[-3]}")
    assert audit.verify() == [str(ids[-2]), str(ids[-1])]


def test_a_table_emptied_is_truncated(engine, audit, ids):
    change(engine, delete(AuditEvent))
    assert_named(audit, ids[0], "truncated", "the anchor names it but the table is empty")
    assert audit.check().checked == 0


def test_a_tail_cut_and_then_written_on_is_still_caught(engine, audit, ids):
    change(engine, delete(AuditEvent).where(AuditEvent.id >= ids[-2]))
    with Session(engine) as session, session.begin():
        audit.record(session, "tester", "test.event", None, None, None)
    # SQLite gives the new event the first id cut off; PostgreSQL's sequence goes on.
    reused = engine.dialect.name == "sqlite"
    assert_named(audit, ids[-2], "rewritten" if reused else "deleted",
                 REPLACED if reused else "the anchor names it but it is no longer in the table")


def test_a_chain_recomputed_with_the_key_is_caught_by_the_anchor(engine, audit, ids):
    key = audit_key()
    with Session(engine) as session, session.begin():
        previous = session.get(AuditEvent, ids[1])
        for event_id in ids[2:]:
            rewritten = session.get(AuditEvent, event_id)
            if event_id == ids[2]:
                rewritten.detail = {"n": "never happened"}
            rewritten.prev_hash = previous.hash
            rewritten.hash = event_mac(key, rewritten)
            session.flush()
            previous = rewritten
    assert_named(audit, ids[2], "rewritten", REPLACED)


def test_with_the_wrong_key_every_event_is_edited_and_the_first_named(engine, audit, ids):
    wrong = AuditLog(engine, key=b"not the key that wrote this chain!")
    verdict = wrong.check()
    assert (verdict.kind, verdict.event_id, verdict.counts) == ("edited", ids[0],
                                                                {"edited": EVENTS})
    assert wrong.verify() == [str(event_id) for event_id in ids]
    assert describe(verdict).splitlines()[1].startswith("every event fails its MAC: the "
                                                        "audit key is probably not")


def test_the_first_problem_in_chain_order_is_named(engine, audit, ids):
    change(engine, update(AuditEvent).where(AuditEvent.id == ids[4]).values(actor="x"),
           delete(AuditEvent).where(AuditEvent.id == ids[1]))
    verdict = audit.check()
    assert (verdict.kind, verdict.event_id) == ("deleted", ids[1])
    assert verdict.counts == {"deleted": 2, "edited": 1}
    assert audit.verify() == [str(ids[1]), str(ids[2]), str(ids[4])]


def test_an_anchor_holding_only_some_heads_is_enough(engine, audit, ids, tmp_path):
    this_host = AuditAnchor(tmp_path / "this-host.log")
    this_host.append([(ids[3], event(engine, ids[3]).hash)])
    partial = AuditLog(engine, anchor=this_host)
    assert (partial.check().ok, partial.check().anchor_head) == (True, ids[3])
    change(engine, delete(AuditEvent).where(AuditEvent.id >= ids[3]))
    assert_named(partial, ids[3], "truncated",
                 f"the anchor names it but the table ends at event {ids[2]}")


def assert_named(audit, event_id, kind, text):
    verdict = audit.check()
    assert (verdict.ok, verdict.kind, verdict.event_id, verdict.problem) == (
        False, kind, event_id, text)
    assert describe(verdict).splitlines()[0] == (
        f"audit chain broken at event {event_id}: {kind} ({text})")
    assert str(event_id) in audit.verify()


# ---- the command -----------------------------------------------------------------------

def run(*argv):
    parser = argparse.ArgumentParser(prog="switchboard")
    add_audit_commands(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(["audit", "verify", *argv])
    return args.run(args)


def test_the_command_reports_an_intact_chain(engine, audit, ids, capsys):
    url = engine.url.render_as_string(hide_password=False)
    assert run("--database", url) == 0
    assert capsys.readouterr().out == (f"audit chain intact: {EVENTS} events, "
                                       f"anchor head {ids[-1]} matches\n")


def test_the_command_names_the_first_problem_and_fails(engine, audit, ids, capsys):
    change(engine, update(AuditEvent).where(AuditEvent.id == ids[1]).values(detail=None))
    url = engine.url.render_as_string(hide_password=False)
    assert run("--database", url) == 1
    assert capsys.readouterr().out == (f"audit chain broken at event {ids[1]}: edited "
                                       "(its content no longer matches its MAC)\n")


def test_the_command_takes_the_database_from_the_environment(
        engine, audit, ids, capsys, monkeypatch):
    change(engine, delete(AuditEvent).where(AuditEvent.id == ids[-1]))
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL",
                       engine.url.render_as_string(hide_password=False))
    assert run() == 1
    assert capsys.readouterr().out == (f"audit chain broken at event {ids[-1]}: truncated "
                                       f"(the anchor names it but the table ends at event "
                                       f"{ids[-2]})\n")


def test_the_command_checks_against_a_named_anchor(engine, audit, ids, capsys, tmp_path):
    url = engine.url.render_as_string(hide_password=False)
    assert run("--database", url, "--anchor", str(tmp_path / "empty.log")) == 0
    assert capsys.readouterr().out == (
        f"audit chain intact: {EVENTS} events; the anchor {tmp_path / 'empty.log'} holds "
        "no heads, so a cut tail would go unseen\n")


def test_the_command_needs_the_store(tmp_path, capsys):
    assert run("--database", f"sqlite:///{tmp_path / 'empty.db'}") == 2
    assert capsys.readouterr().err == ("switchboard audit verify: the store has no "
                                       "audit_events table; run `switchboard db upgrade` "
                                       "first\n")


def test_the_command_needs_a_usable_key(engine, audit, capsys, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_AUDIT_KEY", "too short")
    url = engine.url.render_as_string(hide_password=False)
    assert run("--database", url) == 2
    err = capsys.readouterr().err
    assert err.startswith("switchboard audit verify: SWITCHBOARD_AUDIT_KEY holds 9 "
                          "characters; the audit key needs at least 32")
    assert "too short" not in err


def test_the_command_refuses_a_malformed_url(capsys):
    assert run("--database", "not a url") == 2
    assert capsys.readouterr().err == ("switchboard audit verify: --database is not a "
                                       "database URL (e.g. postgresql://host/db)\n")
