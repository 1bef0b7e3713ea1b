"""Which faults a chaos run injects, and at which load milestones (counts of ACKs):
drawn from a seeded random generator, so a run can be repeated with its seed. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass

SERVE_KILL = "serve-kill"
ENGINE_KILL = "engine-kill"
DESTINATION_DOWN = "destination-down"
DEAD_LETTER_ROUND = "dead-letter-round"
DATABASE_STOP = "database-stop"
SLOW_DESTINATION = "slow-destination"
KINDS = (SERVE_KILL, ENGINE_KILL, DESTINATION_DOWN, DEAD_LETTER_ROUND, DATABASE_STOP,
         SLOW_DESTINATION)
FIRST, LAST = 0.05, 0.9  # share of the load within which faults come


class PlanError(ValueError):
    """The load is too short for the faults asked for."""


@dataclass(frozen=True)
class Fault:
    milestone: int  # the ACK count at which it is injected
    kind: str
    target: int = 0  # which engine process, for an engine kill


def plan(seed: int, messages: int, spacing: int, serve_kills: int, engine_kills: int,
         postgres: bool) -> list[Fault]:
    """The run's faults in milestone order, at least ``spacing`` ACKs apart: the
    serve kills, on PostgreSQL the engine kills (the two engines in turn) and the
    database stop, and one of each destination fault, in an order drawn at random."""
    kinds = [SERVE_KILL] * serve_kills + [DESTINATION_DOWN, DEAD_LETTER_ROUND,
                                          SLOW_DESTINATION]
    if postgres:
        kinds += [ENGINE_KILL] * engine_kills + [DATABASE_STOP]
    first, last = int(messages * FIRST), int(messages * LAST)
    places = range(max(first, 1), last, max(spacing, 1))
    if len(places) < len(kinds):
        raise PlanError(f"{messages} messages leave room for {len(places)} faults "
                        f"{spacing} ACKs apart, not {len(kinds)}: send more messages, "
                        "or ask for fewer kills")
    rng = random.Random(seed)
    milestones = sorted(rng.sample(places, len(kinds)))
    rng.shuffle(kinds)
    faults, engine_turn = [], 0
    for milestone, kind in zip(milestones, kinds, strict=True):
        target = 0
        if kind == ENGINE_KILL:
            target, engine_turn = engine_turn % 2, engine_turn + 1
        faults.append(Fault(milestone, kind, target))
    return faults
