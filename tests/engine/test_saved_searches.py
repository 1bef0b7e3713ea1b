"""Saved searches on SQLite and PostgreSQL: each user's own, names unique per user,
queries checked as the message log checks them, every change audited without the
values searched for."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.message_log import MessageLog
from engine.queues import Forbidden, Invalid, NotFound, Refused
from engine.saved_searches import SavedSearches
from engine.store.models import AuditEvent
from tests.queue_rows import as_, prepared

FAILED_LABS = {"status": "failed", "path": "OBX-3.1", "value": "718-7", "sort": "received_at"}


@pytest.fixture
def searches(engine) -> SavedSearches:
    prepared(engine)
    return SavedSearches(engine)


def test_each_user_sees_and_changes_only_their_own(searches):
    olive, anna = as_("olive"), as_("anna")
    saved = searches.save(olive, "failed labs", {**FAILED_LABS, "control_id": ""})
    assert saved["query"] == FAILED_LABS  # empty parameters are not kept
    searches.save(olive, "a patient", {"patient": "MRN1", "patient_authority": "RIVERSIDE"})
    searches.save(anna, "failed labs", {"status": "failed"})  # the same name, another user
    assert [s["name"] for s in searches.list(olive)] == ["a patient", "failed labs"]
    assert [(s["name"], s["query"]) for s in searches.list(anna)] == [
        ("failed labs", {"status": "failed"})]
    assert searches.get(olive, "failed labs")["query"] == FAILED_LABS
    with pytest.raises(NotFound, match="you have no saved search named 'a patient'"):
        searches.get(anna, "a patient")
    with pytest.raises(NotFound):
        searches.delete(anna, "a patient")
    searches.delete(olive, "a patient")
    assert [s["name"] for s in searches.list(olive)] == ["failed labs"]
    assert [s["name"] for s in searches.list(anna)] == ["failed labs"]


def test_a_name_is_used_once_per_user_unless_replaced(searches):
    olive = as_("olive")
    first = searches.save(olive, "failed labs", FAILED_LABS)
    with pytest.raises(Refused, match=r"named 'failed labs' already\. Choose another name"):
        searches.save(olive, " failed labs ", {"status": "failed"})
    replaced = searches.save(olive, "failed labs", {"status": "failed"}, replace=True)
    assert (replaced["id"], replaced["query"]) == (first["id"], {"status": "failed"})
    assert len(searches.list(olive)) == 1


def test_a_saved_query_runs_as_the_message_log_takes_it(engine, searches):
    saved = searches.save(as_("olive"), "failed labs", FAILED_LABS)
    assert MessageLog(engine).list(saved["query"]).items == []


@pytest.mark.parametrize(("name", "query", "error"), [
    ("x", {"colour": "red"}, "unknown filter 'colour'"),
    ("x", {"path": "OBX-5", "value": "1"}, "'OBX-5' is not an indexed path"),
    ("x", {"since": "yesterday"}, "since must be an ISO 8601 time"),
    ("", {"status": "failed"}, "needs a name of 1 to 100 characters"),
    ("x" * 101, {"status": "failed"}, "needs a name of 1 to 100 characters"),
])
def test_a_search_that_could_not_run_is_not_saved(searches, name, query, error):
    with pytest.raises(Invalid, match=error):
        searches.save(as_("olive"), name, query)
    assert searches.list(as_("olive")) == []


def test_only_those_who_read_the_message_log_save_searches(searches):
    with pytest.raises(Forbidden, match=r"message\.read"):
        searches.save(as_("cora"), "mine", {"status": "failed"})
    with pytest.raises(Forbidden):
        searches.list(as_("cora"))


def test_every_change_is_audited_without_the_values(engine, searches):
    olive = as_("olive")
    saved = searches.save(olive, "a patient", {"patient": "MRN1", "path": "MSH-4",
                                               "value": "LABFAC"})
    searches.save(olive, "a patient", {"patient": "MRN2"}, replace=True)
    searches.delete(olive, "a patient")
    with Session(engine) as session:
        events = session.scalars(select(AuditEvent).where(
            AuditEvent.target_type == "saved_search").order_by(AuditEvent.id)).all()
    assert [(e.actor, e.action, e.target_id, e.detail) for e in events] == [
        ("olive", "saved_search.save", str(saved["id"]),
         {"filters": ["path", "patient", "value"]}),
        ("olive", "saved_search.replace", str(saved["id"]), {"filters": ["patient"]}),
        ("olive", "saved_search.delete", str(saved["id"]), {"filters": ["patient"]}),
    ]
    assert not any("MRN" in str(e.detail) or "LABFAC" in str(e.detail) for e in events)
