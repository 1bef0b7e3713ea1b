"""Impact previews on SQLite and PostgreSQL: messages journaled through the real journal
are replayed through the published version (the shipped configuration) and a draft
that moves the bed board's route, and the preview reports exactly which messages gained
and lost which destination; selection by time and source; a thin journal made up with
the rule tests' messages; progress; failures recorded; one runner per preview."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.impact_preview import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Claim,
    PreviewRunner,
    check_selection,
    preview_state,
    request_preview,
)
from engine.journal import Journal, Received, now_utc
from engine.queues import Invalid, NotFound
from engine.rule_versions import bootstrap
from engine.rules.snapshot import content_hash, from_content
from engine.store.migrate import upgrade
from engine.store.models import ImpactPreview, RuleSetVersion
from tests.samples import read
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
FEED, PARTNER = "ehr-adt-feed", "partner-referrals"
BED_ROW = "registration/patient-flow-to-bed-board"
MOVED = {"routes": {"added": [f"{BED_ROW} → clinic-south"],
                    "removed": [f"{BED_ROW} → bed-board"]},
         "destinations": {"added": ["clinic-south"], "removed": ["bed-board"]}}

# (name, sample or raw bytes, source, minutes after T0)
TRAFFIC = [
    ("admission", "fhir-converter/ADT-A01-01.hl7", FEED, 0),  # lab, bed board, warehouse
    ("transfer", "fhir-converter/ADT-A02-01.hl7", FEED, 10),  # bed board, warehouse
    ("registration", "fhir-converter/ADT-A04-01.hl7", FEED, 20),  # lab, warehouse
    ("vaccination", "fhir-converter/VXU-V04-01.hl7", PARTNER, 30),  # warehouse
    ("result", "fhir-converter/ORU-R01-RMGEAD.hl7", FEED, 40),  # EHR, clinic, warehouse
    ("unreadable", b"not hl7", FEED, 50),
    ("resent admission", "fhir-converter/ADT-A01-01.hl7", FEED, 60),  # a duplicate
]


def prepared(engine) -> None:
    upgrade(engine)
    assert bootstrap(engine, ROOT) == 1


def journal(engine, traffic=TRAFFIC) -> dict[str, str]:
    """Journal ``traffic`` through the journal; message ids by name."""
    recorder = Journal(engine)
    try:
        ids = {}
        for name, sample, source, minutes in traffic:
            raw = sample if isinstance(sample, bytes) else read(sample)
            received = Received(raw, source, received_at=T0 + timedelta(minutes=minutes))
            ids[name] = recorder.record(received).message_id
        return ids
    finally:
        recorder.close()


def route_bed_board_to(destination: str):
    def edit(content: dict[str, Any]) -> None:
        for doc in content["documents"]:
            if doc["path"] == "rules/routes/registration.yaml":
                for row in doc["data"]["rows"]:
                    if row["id"] == "patient-flow-to-bed-board":
                        row["to"] = [destination]
    return edit


def add_draft(engine, edit=None, version: int = 2) -> int:
    """A draft: version 1's content as ``edit`` changes it (by default, the bed board's
    route moved to the South Clinic); its row id."""
    with Session(engine) as session, session.begin():
        first = session.scalars(select(RuleSetVersion).where(RuleSetVersion.version == 1)).one()
        content = copy.deepcopy(first.content)
        (edit or route_bed_board_to("clinic-south"))(content)
        draft = RuleSetVersion(version=version, status="draft", parent_id=first.id, author="ana",
                               content=content, content_hash=content_hash(content),
                               created_at=T0)
        session.add(draft)
        session.flush()
        return draft.id


def request(engine, version_id: int, selection: dict[str, Any] | None = None) -> int:
    with Session(engine) as session, session.begin():
        version = session.get(RuleSetVersion, version_id)
        return request_preview(session, version, selection or {}, "ana").id


def state(engine, preview_id: int) -> dict[str, Any]:
    with Session(engine) as session:
        return preview_state(session, preview_id)


def rule_test_cases(engine, version_id: int) -> list[tuple[str, str]]:
    with Session(engine) as session:
        source = from_content(session.get(RuleSetVersion, version_id).content)
    return [(doc.path, case["id"]) for doc in source.of_kind("tests")
            for case in doc.data["cases"]]


def journal_entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in report["messages"] if "message_id" in entry]


def test_a_draft_that_changes_routing_reports_exactly_the_expected_differences(engine):
    prepared(engine)
    ids = journal(engine)
    draft_id = add_draft(engine)
    preview_id = request(engine, draft_id, {"limit": 6})
    assert state(engine, preview_id)["status"] == QUEUED
    assert PreviewRunner(engine).run_pending() == 1
    found = state(engine, preview_id)
    assert (found["status"], found["error"], found["baseline_version"]) == (DONE, None, 1)
    assert (found["version"], found["current"], found["selection"]) == (2, True, {"limit": 6})
    # Six replayable messages (the resent copy is a duplicate), so no rule tests.
    assert (found["journal_messages"], found["test_messages"]) == (6, 0)
    assert found["progress"] == {"done": 6, "total": 6}
    assert found["report"] == {"messages": [  # newest first
        {"message_id": ids["transfer"], **MOVED},
        {"message_id": ids["admission"], **MOVED},
    ], "truncated": 0}
    assert found["summary"] == {
        "messages": 6, "changed": 2, "unchanged": 4, "unreadable": 1,
        "messages_with_new_exceptions": 0, "messages_with_exceptions_gone": 0,
        "new_exceptions": {}, "exceptions_gone": {},
        "destinations": {
            "analytics-warehouse": counts(5, 5),
            "bed-board": counts(2, 0, removed=2),
            "clinic-north": counts(1, 1),
            "clinic-south": counts(0, 2, added=2),
            "ehr-fhir": counts(1, 1),
            "lab-system": counts(2, 2),
        },
    }


def counts(before: int, after: int, added: int = 0, removed: int = 0,
           payload_changed: int = 0) -> dict[str, int]:
    return {"before": before, "after": after, "added": added, "removed": removed,
            "payload_changed": payload_changed}


def test_selection_by_time_window_and_source(engine):
    prepared(engine)
    ids = journal(engine)
    draft_id = add_draft(engine)
    cases = len(rule_test_cases(engine, draft_id))
    window = request(engine, draft_id, {  # the transfer, registration and vaccination
        "since": (T0 + timedelta(minutes=10)).isoformat(),
        "until": "2026-11-24T03:40:00-05:00"})
    partner = request(engine, draft_id, {"source": PARTNER})
    late_feed = request(engine, draft_id, {"source": FEED, "since": "2026-11-24T08:05:00Z",
                                           "limit": 2})
    assert PreviewRunner(engine).run_pending() == 3
    found = state(engine, window)
    assert (found["journal_messages"], found["test_messages"]) == (3, cases)
    assert [e["message_id"] for e in journal_entries(found["report"])] == [ids["transfer"]]
    found = state(engine, partner)
    assert (found["journal_messages"], found["test_messages"]) == (1, cases)
    assert journal_entries(found["report"]) == []
    found = state(engine, late_feed)  # the newest two of the feed: unreadable, result
    assert (found["journal_messages"], found["test_messages"]) == (2, 0)
    assert (found["summary"]["unreadable"], found["summary"]["changed"]) == (1, 0)


def test_a_thin_journal_is_made_up_with_the_rule_tests_messages(engine):
    prepared(engine)
    journal(engine, TRAFFIC[:2])
    draft_id = add_draft(engine)
    cases = rule_test_cases(engine, draft_id)
    some = request(engine, draft_id, {"limit": 5})
    every = request(engine, draft_id)
    PreviewRunner(engine).run_pending()
    found = state(engine, some)
    assert (found["journal_messages"], found["test_messages"]) == (2, 3)
    assert found["progress"] == {"done": 5, "total": 5}
    assert found["summary"]["messages"] == 5
    found = state(engine, every)
    assert (found["journal_messages"], found["test_messages"]) == (2, len(cases))
    # The rule tests whose message moves a bed, named by file and case.
    named = [(e["test"], e["case"]) for e in found["report"]["messages"] if "test" in e]
    assert named and set(named) <= set(cases)
    assert all(e["routes"] == MOVED["routes"] for e in found["report"]["messages"])
    assert ("rules/tests/registration.yaml", "transfer-moves-the-bed") in named


def test_an_empty_journal_previews_the_rule_tests_only(engine):
    prepared(engine)
    draft_id = add_draft(engine)
    preview_id = request(engine, draft_id)
    PreviewRunner(engine).run_pending()
    found = state(engine, preview_id)
    assert (found["status"], found["journal_messages"]) == (DONE, 0)
    assert found["test_messages"] == len(rule_test_cases(engine, draft_id))


def test_a_fhir_message_is_replayed_as_the_pipeline_reads_it(engine):
    prepared(engine)
    recorder = Journal(engine)
    try:
        body = (ROOT / "tests/engine/fhir/samples/lab-report-bundle.json").read_bytes()
        message_id = recorder.record(Received(body, "portal-fhir", format="fhir-r4")).message_id
    finally:
        recorder.close()

    def analytics_to_outreach(content: dict[str, Any]) -> None:
        for doc in content["documents"]:
            if doc["path"] == "rules/routes/analytics.yaml":
                doc["data"]["rows"][0]["to"] = ["patient-outreach"]

    preview_id = request(engine, add_draft(engine, analytics_to_outreach), {"limit": 1})
    PreviewRunner(engine).run_pending()
    found = state(engine, preview_id)
    assert (found["journal_messages"], found["summary"]["unreadable"]) == (1, 0)
    row = "analytics/all-events-to-analytics"
    assert found["report"]["messages"] == [{
        "message_id": message_id,
        "routes": {"added": [f"{row} → patient-outreach"],
                   "removed": [f"{row} → analytics-warehouse"]},
        "destinations": {"added": ["patient-outreach"], "removed": ["analytics-warehouse"]},
    }]


class Watched(PreviewRunner):
    """A runner that reads the preview as a client would after each of its commits."""

    def __init__(self, engine, **options: Any) -> None:
        super().__init__(engine, **options)
        self.seen: list[tuple[str, dict[str, int]]] = []

    def _write(self, claim: Claim, **values: Any) -> None:
        super()._write(claim, **values)
        found = state(self._engine, claim.preview_id)
        self.seen.append((found["status"], found["progress"]))


def test_progress_is_committed_as_the_preview_runs(engine):
    prepared(engine)
    journal(engine)
    preview_id = request(engine, add_draft(engine), {"limit": 5})
    runner = Watched(engine, chunk=2)
    runner.run_pending()
    assert runner.seen == [
        (RUNNING, {"done": 0, "total": 5}),
        (RUNNING, {"done": 2, "total": 5}),
        (RUNNING, {"done": 4, "total": 5}),
        (RUNNING, {"done": 5, "total": 5}),
        (DONE, {"done": 5, "total": 5}),
    ]
    assert state(engine, preview_id)["journal_messages"] == 5


def test_the_report_is_capped_and_says_how_many_it_left_out(engine):
    prepared(engine)
    ids = journal(engine)
    preview_id = request(engine, add_draft(engine), {"limit": 6})
    PreviewRunner(engine, report_cap=1).run_pending()
    found = state(engine, preview_id)
    assert found["report"] == {"messages": [{"message_id": ids["transfer"], **MOVED}],
                               "truncated": 1}
    assert found["summary"]["changed"] == 2


def test_a_draft_edited_after_the_request_fails_the_preview(engine):
    prepared(engine)
    journal(engine, TRAFFIC[:1])
    draft_id = add_draft(engine)
    preview_id = request(engine, draft_id)
    with Session(engine) as session, session.begin():
        draft = session.get(RuleSetVersion, draft_id)
        content = copy.deepcopy(draft.content)
        route_bed_board_to("clinic-north")(content)
        draft.content, draft.content_hash = content, content_hash(content)
    PreviewRunner(engine).run_pending()
    found = state(engine, preview_id)
    assert (found["status"], found["current"], found["summary"]) == (FAILED, False, None)
    assert found["error"] == ("version 2 changed after this preview was requested. "
                              "Request a new preview of its current content")
    assert found["finished_at"]


def test_a_draft_that_does_not_compile_fails_the_preview(engine):
    prepared(engine)
    preview_id = request(engine, add_draft(engine, route_bed_board_to(["not", "a", "name"])))
    PreviewRunner(engine).run_pending()
    found = state(engine, preview_id)
    assert found["status"] == FAILED
    assert found["error"].startswith("version 2 does not compile: ")


def test_a_broken_preview_fails_without_stopping_the_runner(engine):
    prepared(engine)
    journal(engine, TRAFFIC[:2])
    broken = request(engine, add_draft(engine, lambda content: content.pop("documents")))
    runner = PreviewRunner(engine, poll=0.05)
    runner.start()
    try:
        wait_for(engine, broken, FAILED)
        assert state(engine, broken)["error"] == (
            "internal error (KeyError); the engine log has the details")
        good = request(engine, add_draft(engine, version=3))
        wait_for(engine, good, DONE)
    finally:
        runner.stop()
    assert len(journal_entries(state(engine, good)["report"])) == 2


def wait_for(engine, preview_id: int, status: str) -> None:
    wait_until(lambda: state(engine, preview_id)["status"] == status,
               what=f"preview {preview_id} to become {status}")


def test_a_preview_is_claimed_by_one_runner_only(engine):
    prepared(engine)
    journal(engine, TRAFFIC[:3])
    draft_id = add_draft(engine)
    preview_ids = [request(engine, draft_id, {"limit": 3}) for _ in range(4)]
    first, second = PreviewRunner(engine), PreviewRunner(engine)
    claim = first.claim(preview_ids[0])
    assert claim is not None and second.claim(preview_ids[0]) is None
    first.run_claimed(claim)
    ran: list[int] = []
    threads = [threading.Thread(target=lambda r=r: ran.append(r.run_pending()))
               for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(ran) == 3
    assert {state(engine, i)["status"] for i in preview_ids} == {DONE}


def test_a_preview_left_running_by_a_dead_engine_runs_again(engine):
    prepared(engine)
    journal(engine, TRAFFIC[:2])
    preview_id = request(engine, add_draft(engine))
    dead = PreviewRunner(engine)
    claim = dead.claim(preview_id)
    assert claim is not None
    fresh = PreviewRunner(engine, stale_after=timedelta(minutes=10))
    assert fresh.recover_stale() == 0  # it started just now: perhaps still running
    long_ago = claim.started_at - timedelta(minutes=11)
    with Session(engine) as session, session.begin():
        session.execute(update(ImpactPreview).values(started_at=long_ago,
                                                     progress_at=now_utc()))
    assert fresh.recover_stale() == 0  # a long preview, but it made progress just now
    with Session(engine) as session, session.begin():
        session.execute(update(ImpactPreview).values(progress_at=long_ago))
    assert fresh.recover_stale() == 1
    assert state(engine, preview_id)["status"] == QUEUED
    assert fresh.run_pending() == 1
    finished = state(engine, preview_id)
    # The first engine was not dead after all: its claim is fenced off and writes nothing.
    dead.run_claimed(claim)
    assert state(engine, preview_id) == finished


def test_stopping_the_runner_puts_its_preview_back_in_the_queue(engine):
    prepared(engine)
    journal(engine, TRAFFIC[:4])
    preview_id = request(engine, add_draft(engine), {"limit": 4})

    class StopsMidway(PreviewRunner):
        def _write(self, claim: Claim, **values: Any) -> None:
            super()._write(claim, **values)
            if values.get("done"):
                self._stop.set()

    assert StopsMidway(engine, chunk=2).run_pending() == 1
    found = state(engine, preview_id)
    assert (found["status"], found["started_at"], found["progress"]) == (
        QUEUED, None, {"done": 0, "total": 0})


def test_an_unknown_preview_is_not_found(engine):
    prepared(engine)
    with Session(engine) as session, pytest.raises(NotFound, match="no impact preview 7"):
        preview_state(session, 7)


@pytest.mark.parametrize(("selection", "expected"), [
    ({}, {"limit": 1000}),
    ({"limit": 1}, {"limit": 1}),
    ({"limit": 100_000, "source": " ehr-adt-feed "}, {"limit": 100_000,
                                                       "source": "ehr-adt-feed"}),
    ({"since": "2026-11-24T08:00:00Z", "until": "2026-11-24T04:00:01-04:00"},
     {"limit": 1000, "since": "2026-11-24T08:00:00+00:00",
      "until": "2026-11-24T04:00:01-04:00"}),
    ({"since": None}, {"limit": 1000}),
])
def test_a_selection_is_normalised(selection, expected):
    assert check_selection(selection) == expected


@pytest.mark.parametrize(("selection", "message"), [
    ({"limit": 0}, "limit must be a whole number from 1 to 100,000"),
    ({"limit": 100_001}, "limit must be a whole number from 1 to 100,000"),
    ({"limit": "10"}, "limit must be a whole number"),
    ({"limit": True}, "limit must be a whole number"),
    ({"since": "2026-11-24T08:00:00"}, "since must be an ISO 8601 time with an offset"),
    ({"until": "yesterday"}, "until must be an ISO 8601 time with an offset"),
    ({"since": "2026-11-24T08:00:00Z", "until": "2026-11-24T03:00:00-05:00"},
     "since must be before until"),
    ({"source": ""}, "source must be a connection id"),
    ({"newest": 5}, "unknown selection key"),
])
def test_a_wrong_selection_is_refused(selection, message):
    with pytest.raises(Invalid, match=message):
        check_selection(selection)
