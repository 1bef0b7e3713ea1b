"""/readyz tells the truth (issue 13): it answers 503 with the reason when the engine
itself cannot make progress (a stage makes none while work waits, the journal writer
is down) and 200 again once it can; a destination that is down is not the engine
failing. ``switchboard serve`` runs in this process on SQLite, so faults can be
injected into it."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.pipeline import Pipeline
from tests.delivery_config import delivery_config
from tests.in_process_serve import Serving
from tests.in_process_serve import serving as serve_in_process
from tests.waiting import wait_until


@contextmanager
def serving(tmp_path: Path, **settings: Any) -> Iterator[Serving]:
    # The test sink's port is closed: a destination that is down.
    config = delivery_config(tmp_path / "config", "http://127.0.0.1:9/events")
    with serve_in_process(config, f"sqlite:///{tmp_path / 'switchboard.db'}",
                          **settings) as serve:
        yield serve


def test_a_stalled_pipeline_makes_readyz_503_with_the_reason(tmp_path, monkeypatch):
    with serving(tmp_path, stall_after=0.5) as serve:
        wait_until(lambda: serve.readiness()[0] == 200, what="serve to be ready")
        # Fault: every pipeline pass fails, as a pipeline wedged on one message did.
        passes = Pipeline.run_once

        def failing(self: Pipeline, limit: int = 100) -> int:
            raise RuntimeError("fault injected by the test")

        monkeypatch.setattr(Pipeline, "run_once", failing)
        assert serve.send("STALL-1", "MRN-1") == "AA"  # work waits for the pipeline
        _, body = wait_until(lambda: (found := serve.readiness())[0] == 503 and found,
                             what="/readyz to report the stalled pipeline")
        assert body["checks"]["pipeline"] is False
        assert any(reason.startswith("pipeline: pipeline: no progress for")
                   and "messages waiting to be routed: 1" in reason
                   for reason in body["reasons"]), body["reasons"]
        monkeypatch.setattr(Pipeline, "run_once", passes)  # the fault clears
        wait_until(lambda: serve.readiness()[0] == 200, what="/readyz to recover")


def test_a_dead_journal_writer_makes_readyz_503_and_is_started_again(tmp_path):
    with serving(tmp_path) as serve:
        wait_until(lambda: serve.readiness()[0] == 200, what="serve to be ready")
        journal = serve.process._journal
        assert journal is not None
        assert serve.send("BEFORE", "MRN-1") == "AA"
        commit = journal._write

        def dying(batch) -> None:
            journal._write = commit
            raise SystemExit("the journal writer is killed by the test")

        journal._write = dying
        assert serve.send("KILLED", "MRN-1") == "AE"  # nothing kept: send again
        status, body = serve.readiness()
        assert (status, body["checks"]["journal"]) == (503, False)
        assert "journal: the journal writer had stopped" in body["reasons"][0]
        assert serve.readiness()[0] == 200  # started again by the check
        assert serve.send("KILLED", "MRN-1") == "AA"


def test_a_destination_that_is_down_is_not_the_engine_failing(tmp_path):
    """The test sink's port is closed: deliveries retry, and the engine stays ready."""
    with serving(tmp_path, stall_after=0.5, delivery_workers=1) as serve:
        assert serve.send("DOWN-1", "MRN-1") == "AA"
        wait_until(lambda: _metric(serve.web, "switchboard_retried_total") >= 1,
                   what="the delivery to be tried")
        status, body = serve.readiness()
        assert status == 200, body["reasons"]
        # It shows in /metrics instead, with the feed's own gauges.
        assert _metric(serve.web, "switchboard_oldest_pending_delivery_age_seconds") >= 0
        assert _metric(serve.web, "switchboard_poison_messages") == 0
        with urllib.request.urlopen(f"http://127.0.0.1:{serve.web}/metrics") as response:
            text = response.read().decode()
        for gauge in ("switchboard_oldest_unrouted_age_seconds",
                      "switchboard_oldest_pending_delivery_age_seconds",
                      "switchboard_poison_messages"):
            assert f'{gauge}{{connection="test-sink"}}' in text
            assert f'{gauge}{{connection="ehr-adt-feed"}}' in text


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        lines = response.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith(name + "{"))
