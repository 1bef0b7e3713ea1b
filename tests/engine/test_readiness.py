"""/readyz tells the truth (issue 13): it answers 503 with the reason when the engine
itself cannot make progress (a stage makes none while work waits, the journal writer
is down) and 200 again once it can; a destination that is down is not the engine
failing. ``switchboard serve`` runs in this process on SQLite, so faults can be
injected into it."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from engine.pipeline import Pipeline
from engine.service import EngineProcess, Settings, run
from tests.delivery_config import delivery_config, update
from tests.serve_process import wait_until


@dataclass
class Serving:
    process: EngineProcess
    web: int
    mllp: int

    def readiness(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web}/readyz") as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def send(self, control_id: str, patient: str) -> str:
        with BlockingMllpClient("127.0.0.1", self.mllp, timeout=30) as client:
            return parse(client.send(update(control_id, patient))).get("MSA-1") or ""


@contextmanager
def serving(tmp_path: Path, **settings: Any) -> Iterator[Serving]:
    # The test sink's port is closed: a destination that is down.
    config = delivery_config(tmp_path / "config", "http://127.0.0.1:9/events")
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    options = {"web_port": 0, "engine_health_port": 0, "mllp_port_override": 0,
               "pipeline_workers": 0, **settings}
    ready = threading.Event()
    state: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def started(process, servers) -> None:
        state["serving"] = Serving(process, servers[0].server_port,
                                   process.listeners["ehr-adt-feed"].port)
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(run(Settings(url, config, **options), engine_part=True,
                                    web_part=True, started=started, stop=stop))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "serve did not start"
        yield state["serving"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()
    assert not thread.is_alive()


def test_a_stalled_pipeline_makes_readyz_503_with_the_reason(tmp_path, monkeypatch):
    with serving(tmp_path, stall_after=0.5) as serve:
        wait_until(lambda: serve.readiness()[0] == 200, 30, "serve never became ready")
        # Fault: every pipeline pass fails, as a pipeline wedged on one message did.
        passes = Pipeline.run_once

        def failing(self: Pipeline, limit: int = 100) -> int:
            raise RuntimeError("fault injected by the test")

        monkeypatch.setattr(Pipeline, "run_once", failing)
        assert serve.send("STALL-1", "MRN-1") == "AA"  # work waits for the pipeline
        _, body = wait_until(
            lambda: (found := serve.readiness())[0] == 503 and found, 30,
            "/readyz did not report the stalled pipeline")
        assert body["checks"]["pipeline"] is False
        assert any(reason.startswith("pipeline: pipeline: no progress for")
                   and "messages waiting to be routed: 1" in reason
                   for reason in body["reasons"]), body["reasons"]
        monkeypatch.setattr(Pipeline, "run_once", passes)  # the fault clears
        wait_until(lambda: serve.readiness()[0] == 200, 30, "/readyz did not recover")


def test_a_dead_journal_writer_makes_readyz_503_and_is_started_again(tmp_path):
    with serving(tmp_path) as serve:
        wait_until(lambda: serve.readiness()[0] == 200, 30, "serve never became ready")
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
        wait_until(lambda: _metric(serve.web, "switchboard_retried_total") >= 1, 60,
                   "the delivery was never tried")
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
