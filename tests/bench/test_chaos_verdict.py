"""The chaos run's plan and verdict, on tables of cases: the faults drawn from a seed
(the same seed, the same run), and each figure of the report counted from what the
sink recorded and the senders' ACKs."""

from __future__ import annotations

from itertools import pairwise

import pytest

from bench.chaos import plan
from bench.chaos.load import control_id, mrn, per_patient
from bench.chaos.report import verdict


def test_a_seed_draws_the_same_faults_and_every_kind_is_planned():
    first = plan.plan(7, 2_000, 80, 5, 2, postgres=True)
    assert first == plan.plan(7, 2_000, 80, 5, 2, postgres=True)
    assert first != plan.plan(8, 2_000, 80, 5, 2, postgres=True)
    kinds = [fault.kind for fault in first]
    assert sorted(set(kinds)) == sorted(plan.KINDS)
    assert kinds.count(plan.SERVE_KILL) == 5
    assert [f.target for f in first if f.kind == plan.ENGINE_KILL] == [0, 1]
    milestones = [fault.milestone for fault in first]
    assert milestones == sorted(milestones)
    assert all(b - a >= 80 for a, b in pairwise(milestones))
    assert milestones[0] >= 100 and milestones[-1] < 1_800


def test_sqlite_plans_no_engine_or_database_fault():
    kinds = {fault.kind for fault in plan.plan(1, 20_000, 400, 20, 4, postgres=False)}
    assert kinds == {plan.SERVE_KILL, plan.DESTINATION_DOWN, plan.DEAD_LETTER_ROUND,
                     plan.SLOW_DESTINATION}


def test_a_load_too_short_for_its_faults_is_refused():
    with pytest.raises(plan.PlanError, match="room for 5 faults 400 ACKs apart, not 8"):
        plan.plan(1, 2_000, 400, 5, 0, postgres=False)


def test_messages_are_shared_out_evenly():
    assert per_patient(10, 4) == [3, 3, 2, 2]


def post(patient, sequence, at, key=None, status=200):
    return {"key": key or f"k{patient}-{sequence}", "control_id": control_id(patient, sequence),
            "patient": patient, "sequence": sequence, "mrn": mrn(patient), "path": "/events",
            "status": status, "at": at}


KILL = {"kind": plan.SERVE_KILL, "start": 10.0, "end": 12.0, "in_flight": 1,
        "load_unfinished": True}
ROUND = {"kind": plan.DEAD_LETTER_ROUND, "start": 20.0, "end": 21.0, "dead_lettered": 1,
         "retried": 1, "load_unfinished": True}
PLANNED = [plan.Fault(1, plan.SERVE_KILL), plan.Fault(2, plan.DEAD_LETTER_ROUND)]
ACKS = [control_id(0, 0), control_id(0, 1), control_id(1, 0)]


@pytest.mark.parametrize(("records", "figures"), [
    ([post(0, 0, 1), post(0, 1, 2), post(1, 0, 3)],
     {"lost": 0, "out_of_order": 0, "redelivered": 0, "missed": []}),
    ([post(0, 0, 1), post(1, 0, 3)], {"lost": 1, "missed": ["lost: 1"]}),
    # A 409 is a refusal, not a delivery.
    ([post(0, 0, 1), post(0, 1, 2, status=409), post(1, 0, 3)], {"lost": 1, "refused_posts": 1}),
    ([post(0, 1, 1), post(0, 0, 2), post(1, 0, 3)],
     {"out_of_order": 1, "missed": ["out of order: 1"]}),
    # A repeat across the kill is explained; its first arrival keeps the order.
    ([post(0, 0, 9), post(0, 1, 9.5), post(0, 0, 13), post(0, 1, 13), post(1, 0, 14)],
     {"redelivered": 2, "redelivered_posts": 2, "redelivered_unexplained": 0,
      "out_of_order": 0}),
    # A repeat no fault explains is counted as such.
    ([post(0, 0, 1), post(0, 0, 2), post(0, 1, 3), post(1, 0, 4)],
     {"redelivered": 1, "redelivered_unexplained": 1}),
    ([post(0, 0, 1), post(0, 1, 2), {**post(1, 0, 3), "mrn": "CHAOS000"}],
     {"wrong_patient": 1}),
])
def test_the_verdict_counts_what_the_sink_recorded(records, figures):
    report = verdict(records, ACKS, [KILL, ROUND], PLANNED, {"messages": 3})
    assert {name: report[name] for name in figures} == figures


def test_a_fault_not_injected_or_a_dead_letter_not_retried_misses_the_target():
    records = [post(0, 0, 1), post(0, 1, 2), post(1, 0, 3)]
    report = verdict(records, ACKS, [KILL, {**ROUND, "retried": 0}], PLANNED + PLANNED,
                     {"messages": 3})
    assert report["missed"] == [
        "faults injected {'serve-kill': 1, 'dead-letter-round': 1} != planned "
        "{'serve-kill': 2, 'dead-letter-round': 2}",
        "dead-lettered 1, retried 0: each dead letter must be made and retried"]
