"""The knobs of a chaos run: the full run's by default, the CI run's smaller. Each
outage ends on an event (attempts failed, a sender refused, dead letters made,
requests answered) and lasts at least its minimum seconds too: the bench's fixed
durations, 0 in the tests, which wait for events only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    messages: int = 20_000
    patients: int = 200
    connections: int = 4
    kills: int = 20  # SIGKILLs of ``switchboard serve``
    engine_kills: int = 4  # on PostgreSQL, of the two ``switchboard engine`` (in turn)
    destination_down: float = 60.0  # at least these seconds, and until failed_attempts
    failed_attempts: int = 20  # recorded against the destination while it is down
    database_down: float = 30.0  # at least; and until a sender has been refused
    slow_seconds: float = 2.0  # how late the slow destination answers
    slow_requests: int = 20  # how many requests it answers late
    dead_letter_patients: int = 10  # patients whose deliveries are refused until dead
    dead_letter_round: float = 0.0  # at least these seconds of refusals
    delivery_lease: float = 10.0  # a killed engine's claims lapse after this (PostgreSQL)
    delivery_workers: int = 4
    pipeline_workers: int = 1  # processes of serve's pipeline (and delivery beside it)
    engine_pipeline_workers: int = 1  # of each engine process (0: threads, starts faster)
    # Kill only once every answered delivery is on record, the destination holding the
    # rest (the CI run: its repeats are then what was held, not what a burst left
    # unrecorded); the bench kills amid the flow. SQLite only: on PostgreSQL the
    # engine processes' deliveries would be held as well.
    settle_before_kill: bool = False
    limit: float = 600.0  # seconds any one wait may take before the run fails
    seed: int = 0

    @property
    def spacing(self) -> int:
        """ACKs between two faults: enough that every patient sends twice in between,
        so the refused patients' deliveries reach the sink while the load goes on."""
        return 2 * self.patients
