"""The chaos run, short, in CI: 2,000 messages resent until AA over four MLLP
connections, with every fault kind injected at load milestones drawn from a seeded
generator (five SIGKILLs of ``switchboard serve``, on PostgreSQL two of the engine
processes and the database stopped, the destination down, refusing until dead letters
are made and retried by the operator's CLI, and slow). Each outage ends on an event:
failed attempts recorded, a sender refused, dead letters made, slow answers given.
Nothing ACKed is lost, each patient's messages arrive in order, every repeat is one a
fault explains and they stay under 1%, every kill comes mid-load with a delivery in
flight. On SQLite each serve kill comes once every answered delivery is on record,
the destination holding the rest, so its repeats are those it held, on any machine.
``SWITCHBOARD_CHAOS_SEED`` repeats a run; the seed is in every failure."""

from __future__ import annotations

import os
import random

import pytest

from bench.chaos.run import POSTGRES, SQLITE, run_store
from bench.chaos.settings import Settings
from tests.waiting import wait_until

CI = Settings(messages=2_000, patients=40, kills=5, engine_kills=2, destination_down=0,
              failed_attempts=5, database_down=0, slow_seconds=0.5, slow_requests=4,
              dead_letter_patients=1, dead_letter_round=0, delivery_lease=5.0, limit=120,
              delivery_workers=2, pipeline_workers=0, engine_pipeline_workers=0,
              settle_before_kill=True)
# Every process runs its pipeline and delivery as threads: a process restarts in half
# the time it takes with worker processes (the bench runs those).


@pytest.mark.parametrize("store", [SQLITE, POSTGRES])
def test_chaos_loses_nothing_keeps_order_and_injects_every_fault(store, tmp_path):
    seed = int(os.environ.get("SWITCHBOARD_CHAOS_SEED") or random.randrange(10**6))
    settings = Settings(**{**CI.__dict__, "seed": seed})
    report = run_store(store, settings, tmp_path, wait_until)
    about = f"seed {seed} (SWITCHBOARD_CHAOS_SEED={seed} repeats it): {report}"
    assert report["missed"] == [], about
    assert report["acked"] == report["delivered"] == settings.messages, about
    assert report["kills"]["serve"] == settings.kills, about
    assert report["kills"]["engine"] == (settings.engine_kills if store == POSTGRES else 0)
    # The sink held a POST at each serve kill: each found a delivery in flight.
    assert report["kills_with_delivery_in_flight"] == settings.kills, about
    assert report["faults_before_load_end"] == sum(report["faults_planned"].values()), about
    assert report["dead_lettered"] >= settings.dead_letter_patients, about
