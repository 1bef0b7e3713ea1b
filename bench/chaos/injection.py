"""Injecting each fault of a chaos run into the running processes, the store and the
sink, and ending it on its event (and, in the bench, not before its minimum seconds).
Each injection returns what happened: when, at how many ACKs, what it found."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.chaos import plan
from bench.chaos.load import Load
from bench.chaos.operator_script import retry_dead_letters
from bench.chaos.settings import Settings
from bench.chaos.sink import ChaosSink
from bench.chaos.store_probe import (
    dead_letters,
    delivered,
    failed_attempts,
    in_flight_keys,
)
from tests.postgres_cluster import PrivateCluster
from tests.serve_process import ServeProcess

Wait = Callable[..., Any]  # tests.waiting.wait_until


def at_least(seconds: float, since: float) -> None:
    """Let an outage last ``seconds`` from ``since`` (monotonic); 0 in the tests."""
    left = seconds - (time.monotonic() - since)
    if left > 0:
        time.sleep(left)


@dataclass
class Injector:
    settings: Settings
    url: str
    sink: ChaosSink
    load: Load
    serve: ServeProcess
    engines: list[ServeProcess]
    cluster: PrivateCluster | None
    wait: Wait
    patients_refused: list[int] = field(default_factory=list)

    def inject(self, fault: plan.Fault) -> dict[str, Any]:
        acked, started = self.load.acked, time.time()
        found = getattr(self, "_" + fault.kind.replace("-", "_"))(fault)
        return {"kind": fault.kind, "milestone": fault.milestone, "acked": acked,
                "load_unfinished": acked < self.load.total, "start": started,
                "end": time.time(), **found}

    def _ready(self) -> bool:
        return all(process.ready() for process in [self.serve, *self.engines])

    def _serve_kill(self, fault: plan.Fault) -> dict[str, Any]:
        # The sink holds a POST while the kill comes: a delivery is provably in flight.
        # Not beside engine processes: their POSTs would be held too, past their
        # timeout, and sent again.
        if self.settings.settle_before_kill and not self.engines:
            hold = self.sink.stall()
            self.wait(hold.caught.is_set, self.settings.limit, "a POST to hold at the sink",
                      every=0.01)
            # Every answered delivery on record: the kill's repeats are exactly the
            # deliveries the destination holds, whatever the machine's speed.
            self.wait(lambda: delivered(self.url) >= self.sink.answered(),
                      self.settings.limit, "the answered deliveries on record", every=0.01)
        else:
            hold = self.sink.hold_next()
            self.wait(hold.caught.is_set, self.settings.limit, "a POST to hold at the sink",
                      every=0.01)
        killed_at = time.time()
        self.serve.kill()
        in_flight = in_flight_keys(self.url)
        hold.release()  # its engine is gone: the answer goes nowhere
        self.sink.resume()
        self.serve.start(self.settings.limit)
        return {"in_flight": len(in_flight), "killed_at": killed_at}

    def _engine_kill(self, fault: plan.Fault) -> dict[str, Any]:
        engine = self.engines[fault.target]
        killed_at = time.time()
        engine.kill()
        in_flight = in_flight_keys(self.url)
        engine.start(self.settings.limit)
        return {"in_flight": len(in_flight), "killed_at": killed_at, "engine": fault.target}

    def _destination_down(self, fault: plan.Fault) -> dict[str, Any]:
        since, dead_before = time.monotonic(), dead_letters(self.url)
        before = failed_attempts(self.url)
        self.sink.stop()
        wanted = before + self.settings.failed_attempts
        self.wait(lambda: failed_attempts(self.url) >= wanted, self.settings.limit,
                  f"{self.settings.failed_attempts} failed attempts at the sink")
        at_least(self.settings.destination_down, since)
        down_for = time.monotonic() - since
        self.sink.start()
        return {"failed_attempts": failed_attempts(self.url) - before,
                "down_seconds": round(down_for, 1),
                "dead_lettered": dead_letters(self.url) - dead_before}

    def _database_stop(self, fault: plan.Fault) -> dict[str, Any]:
        assert self.cluster is not None
        since, refused = time.monotonic(), self.load.refused
        self.cluster.stop()
        self.wait(lambda: self.load.refused > refused, self.settings.limit,
                  "a message refused while the store is down")
        at_least(self.settings.database_down, since)
        down_for = time.monotonic() - since
        self.cluster.start()
        self.wait(self._ready, self.settings.limit, "every process ready again")
        return {"refused": self.load.refused - refused, "down_seconds": round(down_for, 1)}

    def _slow_destination(self, fault: plan.Fault) -> dict[str, Any]:
        done = self.sink.answer_late(self.settings.slow_requests, self.settings.slow_seconds)
        self.wait(done.is_set, self.settings.limit, "the slow answers")
        return {"slow_requests": self.settings.slow_requests,
                "slow_seconds": self.settings.slow_seconds}

    def _dead_letter_round(self, fault: plan.Fault) -> dict[str, Any]:
        since, before = time.monotonic(), dead_letters(self.url)
        count = self.settings.dead_letter_patients
        patients = frozenset(range(0, self.settings.patients,
                                   max(1, self.settings.patients // count)))
        self.patients_refused = sorted(patients)
        self.sink.refuse(patients)
        self.wait(lambda: dead_letters(self.url) >= before + len(patients),
                  self.settings.limit, f"{len(patients)} dead letters")
        at_least(self.settings.dead_letter_round, since)
        self.sink.accept()
        # The destination is fixed; the operator sends each dead letter again.
        retried = retry_dead_letters(self.url)
        return {"dead_lettered": dead_letters(self.url) - before, "retried": retried,
                "patients": len(patients)}
