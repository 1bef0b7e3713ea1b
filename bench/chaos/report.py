"""The chaos run's verdict, computed from the sink's record and the senders' ACKs
alone (not from what the engine says of itself): lost, out of order, redelivered and
whether each repeat is explained by a fault, dead letters and retries, kills done, and
the targets missed. Pure."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise
from typing import Any

from bench.chaos import plan
from bench.chaos.load import mrn

REDELIVERED_SHARE = 0.01  # at most this share of the ACKed may arrive twice
DISRUPTIONS = (plan.SERVE_KILL, plan.ENGINE_KILL, plan.DESTINATION_DOWN, plan.DATABASE_STOP)


def verdict(records: list[dict[str, Any]], acks: list[str], faults: list[dict[str, Any]],
            planned: list[plan.Fault], finals: dict[str, Any]) -> dict[str, Any]:
    """The report of one store's run; ``finals`` adds what the run measured itself
    (wall time, retries made after the load)."""
    delivered = [r for r in records if r["status"] == 200]
    acked = set(acks)
    arrived = {r["control_id"] for r in delivered}
    times: dict[str, list[float]] = defaultdict(list)
    for record in delivered:
        times[record["key"]].append(record["at"])
    repeated = {key: at for key, at in times.items() if len(at) > 1}
    windows = [(f["start"], f["end"]) for f in faults if f["kind"] in DISRUPTIONS]
    unexplained = sorted(key for key, at in repeated.items()
                         if not all(_between(windows, a, b) for a, b in pairwise(at)))
    done = Counter(f["kind"] for f in faults)
    wanted = Counter(f.kind for f in planned)
    long_outage = [f for f in faults if f["kind"] == plan.DESTINATION_DOWN]
    rounds = [f for f in faults if f["kind"] == plan.DEAD_LETTER_ROUND]
    dead_lettered = sum(f["dead_lettered"] for f in rounds)
    retried = sum(f["retried"] for f in rounds) + finals.get("retried_after", 0)
    report = {
        "acked": len(acked),
        "delivered": len(arrived & acked),
        "lost": len(acked - arrived),
        "out_of_order": _out_of_order(delivered),
        "redelivered": len(repeated),
        "redelivered_posts": sum(len(at) - 1 for at in repeated.values()),
        "redelivered_unexplained": len(unexplained),
        "wrong_patient": sum(1 for r in delivered if r["mrn"] != mrn(r["patient"])),
        "refused_posts": len(records) - len(delivered),
        "dead_lettered": dead_lettered,
        "retried": retried,
        "dead_lettered_in_long_outage": sum(f["dead_lettered"] for f in long_outage),
        "kills": {"serve": done[plan.SERVE_KILL], "engine": done[plan.ENGINE_KILL]},
        "kills_with_delivery_in_flight": sum(
            1 for f in faults if f["kind"] == plan.SERVE_KILL and f["in_flight"]),
        "faults_before_load_end": sum(1 for f in faults if f["load_unfinished"]),
        "faults": dict(done),
        "faults_planned": dict(wanted),
        **finals,
    }
    report["missed"] = missed(report, len(set(acks)))
    return report


def _between(windows: list[tuple[float, float]], first: float, again: float) -> bool:
    """Whether a fault's window overlaps the time from one arrival to its repeat."""
    return any(start <= again and end >= first for start, end in windows)


def _out_of_order(delivered: list[dict[str, Any]]) -> int:
    """First arrivals, per (destination path, patient), that come after a later
    message of the same patient had already arrived."""
    newest: dict[tuple[str, int], int] = {}
    seen: set[str] = set()
    wrong = 0
    for record in delivered:
        if record["key"] in seen:
            continue
        seen.add(record["key"])
        chain = (record["path"], record["patient"])
        if record["sequence"] < newest.get(chain, -1):
            wrong += 1
        newest[chain] = max(newest.get(chain, -1), record["sequence"])
    return wrong


def missed(report: dict[str, Any], acked: int) -> list[str]:
    """The targets this report misses, in words; empty when every one is met."""
    misses = []
    if report["acked"] < report["messages"]:
        misses.append(f"only {report['acked']} of {report['messages']} messages ACKed")
    for figure in ("lost", "out_of_order", "redelivered_unexplained", "wrong_patient",
                   "dead_lettered_in_long_outage"):
        if report[figure]:
            misses.append(f"{figure.replace('_', ' ')}: {report[figure]}")
    if report["redelivered"] > REDELIVERED_SHARE * acked:
        misses.append(f"redelivered {report['redelivered']} > 1% of {acked}")
    if report["faults"] != report["faults_planned"]:
        misses.append(f"faults injected {report['faults']} != planned "
                      f"{report['faults_planned']}")
    if not report["dead_lettered"] or report["retried"] < report["dead_lettered"]:
        misses.append(f"dead-lettered {report['dead_lettered']}, retried "
                      f"{report['retried']}: each dead letter must be made and retried")
    return misses
