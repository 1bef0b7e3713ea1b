"""Reading the audit trail, on SQLite and PostgreSQL: filters by actor, action, object and
time, sorting, paging, a streamed export of every match, and checks of the chain, each
recorded in the trail with its verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

import engine.security.audit_trail as audit_trail
from engine.queues import Invalid
from engine.security.audit import AuditLog
from engine.security.audit_trail import VERIFY, AuditTrail
from engine.store.models import AuditEvent
from tests.store_template import migrated

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
# (actor, action, target type, target id), an hour apart from START.
EVENTS = [("anna", "rules.draft", "rule_set_version", "2"),
          ("abe", "rules.approve", "rule_set_version", "2"),
          ("abe", "rules.publish", "rule_set_version", "2"),
          ("carl", "content.view", "message", "m-1"),
          ("olive", "exception.retry", "exception", "7"),
          ("carl", "content.view", "message", "m-2")]


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        moment, self.now = self.now, self.now + timedelta(hours=1)
        return moment


@pytest.fixture
def trail(engine) -> AuditTrail:
    migrated(engine)
    log = AuditLog(engine, clock=Clock())
    for actor, action, target_type, target_id in EVENTS:
        with Session(engine) as session, session.begin():
            log.record(session, actor, action, target_type, target_id, {"n": target_id})
    return AuditTrail(engine, log)


def listed(trail, sort="-at", **filters) -> list[tuple[str, str, str | None]]:
    page = trail.events(filters, sort, per_page=100)
    return [(e["actor"], e["action"], e["target_id"]) for e in page.items]


def test_events_come_newest_first_and_filter_by_actor_action_object_and_time(trail):
    assert listed(trail)[0] == ("carl", "content.view", "m-2")
    assert listed(trail, actor="abe") == [("abe", "rules.publish", "2"),
                                          ("abe", "rules.approve", "2")]
    assert listed(trail, action="content.view") == [("carl", "content.view", "m-2"),
                                                    ("carl", "content.view", "m-1")]
    assert listed(trail, target_type="exception", target_id="7") == [
        ("olive", "exception.retry", "7")]
    # From 09:00 (inclusive) to before 11:00: the second and third events.
    assert listed(trail, since="2026-03-01T09:00:00+00:00",
                  until="2026-03-01T11:00:00+00:00") == [("abe", "rules.publish", "2"),
                                                         ("abe", "rules.approve", "2")]
    assert listed(trail, since="2026-03-01T12:00:00+02:00", actor="carl") == [
        ("carl", "content.view", "m-2"), ("carl", "content.view", "m-1")]


def test_events_sort_by_time_actor_action_or_object_and_page(trail):
    assert listed(trail, "at")[0] == ("anna", "rules.draft", "2")
    assert [actor for actor, _a, _t in listed(trail, "actor")] == [
        "abe", "abe", "anna", "carl", "carl", "olive"]
    assert [action for _a, action, _t in listed(trail, "-action")][:2] == [
        "rules.publish", "rules.draft"]
    assert [target for _a, _x, target in listed(trail, "object")] == [
        "7", "m-1", "m-2", "2", "2", "2"]
    second = trail.events({}, "at", page=2, per_page=4)
    assert (second.total, [e["actor"] for e in second.items]) == (6, ["olive", "carl"])


@pytest.mark.parametrize(("filters", "sort", "named"), [
    ({"who": "abe"}, "-at", "who"), ({}, "-hash", "hash"),
    ({"since": "2026-03-01T09:00"}, "-at", "since")])
def test_a_filter_or_sort_it_cannot_use_is_refused_by_name(trail, filters, sort, named):
    with pytest.raises(Invalid, match=named):
        trail.events(filters, sort)
    with pytest.raises(Invalid, match=named):
        trail.stream(filters, sort)


def test_the_export_streams_every_match_a_batch_at_a_time(trail, monkeypatch):
    monkeypatch.setattr(audit_trail, "READ_BATCH", 2)
    streamed = list(trail.stream({"actor": "carl"}, "at"))
    assert [(e["target_id"], e["detail"]) for e in streamed] == [("m-1", {"n": "m-1"}),
                                                                 ("m-2", {"n": "m-2"})]
    assert len(list(trail.stream({}))) == len(EVENTS)


def test_the_actions_and_object_types_held_are_offered_as_choices(trail):
    assert trail.choices() == {
        "action": ["content.view", "exception.retry", "rules.approve", "rules.draft",
                   "rules.publish"],
        "target_type": ["exception", "message", "rule_set_version"]}


def test_each_check_of_the_chain_is_recorded_with_its_verdict(engine, trail):
    assert trail.last_verification() is None
    verdict = trail.verify("carl")
    assert (verdict.ok, verdict.checked) == (True, len(EVENTS))
    last = trail.last_verification()
    assert (last["actor"], last["ok"], last["checked"]) == ("carl", True, len(EVENTS))
    [event] = trail.events({"action": VERIFY}).items
    assert (event["target_type"], event["id"]) == ("audit_chain", last["event"])

    with Session(engine) as session, session.begin():
        first = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id))
        session.execute(update(AuditEvent).where(AuditEvent.id == first + 2)
                        .values(actor="mallory"))
    verdict = trail.verify("adam")
    assert (verdict.ok, verdict.event_id, verdict.kind) == (False, first + 2, "edited")
    last = trail.last_verification()
    assert (last["actor"], last["ok"], last["event_id"], last["kind"]) == (
        "adam", False, first + 2, "edited")
    assert last["problem"] == "its content no longer matches its MAC"
    # The verdict is in the chain too: checking again finds the same tampering only.
    assert AuditLog(engine).verify() == [str(first + 2)]


def test_content_views_are_every_view_of_patient_data_and_one_event_is_found_by_id(
        engine, trail):
    with Session(engine) as session, session.begin():
        AuditLog(engine).record(session, "cora", "task.view", "task", "12", None)
    assert listed(trail, event="content_view") == [("cora", "task.view", "12"),
                                                   ("carl", "content.view", "m-2"),
                                                   ("carl", "content.view", "m-1")]
    [newest] = trail.events({"event": "content_view"}, per_page=1).items
    assert listed(trail, id=str(newest["id"])) == [("cora", "task.view", "12")]
    with pytest.raises(Invalid, match="no security event is called 'views'"):
        trail.events({"event": "views"})
    with pytest.raises(Invalid, match="'x' is not an event number"):
        trail.events({"id": "x"})


def test_a_recorded_check_names_each_event_at_fault_to_look_up(engine, trail):
    ids = [event["id"] for event in trail.events({}, "at").items]
    with Session(engine) as session, session.begin():
        session.execute(update(AuditEvent).where(AuditEvent.id == ids[1])
                        .values(actor="mallory"))
        session.execute(delete(AuditEvent).where(AuditEvent.id == ids[3]))
    verdict = trail.verify("carl")
    assert [(p.event_id, p.kind) for p in verdict.problems] == [
        (ids[1], "edited"), (ids[3], "deleted"), (ids[4], "deleted")]
    last = trail.last_verification()
    assert last["problems"] == [{"event_id": ids[1], "kind": "edited"},
                                {"event_id": ids[3], "kind": "deleted"},
                                {"event_id": ids[4], "kind": "deleted"}]
    assert trail.failing(last) == [
        {"id": ids[1], "kind": "edited", "held": True, "at": "2026-03-01T09:00:00+00:00",
         "actor": "mallory", "action": "rules.approve"},
        {"id": ids[3], "kind": "deleted", "held": False, "at": None, "actor": None,
         "action": None},
        {"id": ids[4], "kind": "deleted", "held": True, "at": "2026-03-01T12:00:00+00:00",
         "actor": "olive", "action": "exception.retry"}]
    assert trail.failing({"ok": True}) == []
