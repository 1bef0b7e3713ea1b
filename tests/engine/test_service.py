"""switchboard serve, end to end on real sockets: MLLP in, journal, ACK, pipeline,
REST API out, then a graceful stop. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from pathlib import Path

from sqlalchemy import func, select

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from engine.progress import PROGRESS
from engine.security.users import UserStore
from engine.service import Settings, prepare_store, run
from engine.store.database import open_engine
from engine.store.models import RuleSetVersion
from tests.samples import CORPUS
from tests.serve_process import api_call
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_serve_ingests_routes_and_answers_the_api(engine):
    # The progress table is per process: parts that earlier tests ran in this one (a
    # delivery worker, say) are not this engine's.
    for part in PROGRESS.versions():
        PROGRESS.forget(part)
    url = engine.url.render_as_string(hide_password=False)
    # Its catalog names hosts that do not exist here: nothing to deliver to.
    settings = Settings(url, ROOT, web_port=0, mllp_port_override=0,
                        delivery_workers=0)
    ready = threading.Event()
    state: dict = {}
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def started(process, servers) -> None:
        state["mllp"] = process.listeners["ehr-adt-feed"].port
        state["web"] = servers[0].server_port
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(run(settings, engine_part=True, web_part=True,
                                    started=started, stop=stop))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "serve did not start"
        routed_before = _routed_metric(state["web"])
        client = BlockingMllpClient("127.0.0.1", state["mllp"], timeout=30)
        try:
            ack = parse(client.send((CORPUS / "fhir-converter/ORU-R01-RMGEAD.hl7").read_bytes()))
        finally:
            client.close()
        assert ack.get("MSA-1") == "AA"
        users_engine = open_engine(url)
        token = UserStore(users_engine).add("olive", "operator", "test")
        users_engine.dispose()
        routed = _wait_for_routed(state["web"], token)
        assert routed["status"] == "routed"
        with urllib.request.urlopen(f"http://127.0.0.1:{state['web']}/readyz") as response:
            readiness = json.loads(response.read())
        assert readiness["checks"] == {
            "database": True, "http_ingest": True, "listeners": True, "journal": True,
            "pipeline": True, "delivery": True}
        assert readiness["reasons"] == []
        # Each pipeline lane reports the version it runs on its first pass.
        version = wait_until(lambda: _readiness(state["web"])["rule_set_version"],
                             what="the rule-set version the engine runs")
        assert version == 1
        assert set(_readiness(state["web"])["rule_set_versions"]) == {"pipeline-0", "pipeline-1"}
        with urllib.request.urlopen(f"http://127.0.0.1:{state['web']}/metrics") as response:
            lines = response.read().decode().splitlines()
        assert 'switchboard_rule_set_version{worker="pipeline-0"} 1.0' in lines
        # The pipeline runs in worker processes; their counts reach this one's /metrics.
        wait_until(lambda: _routed_metric(state["web"]) >= routed_before + 1,
                   what="the routed count in /metrics")
        assert _routed_metric(state["web"]) == routed_before + 1
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()
    assert not thread.is_alive()


def _readiness(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz") as response:
        return json.loads(response.read())


def _routed_metric(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        lines = response.read().decode().splitlines()
    assert "switchboard_queue_depth 0.0" in lines
    prefix = 'switchboard_routed_total{connection="ehr-adt-feed"} '
    return sum(float(line[len(prefix):]) for line in lines if line.startswith(prefix))


def _wait_for_routed(port: int, token: str) -> dict:
    def routed() -> dict | None:
        items = api_call(port, token, "/api/messages")["items"]
        return items[0] if items and items[0]["status"] == "routed" else None

    found: dict = wait_until(routed, what="the message to be routed", every=0.1)
    return found


def test_processes_starting_together_prepare_the_store_once(engine):
    """Engines and web processes started at once on an empty store: one migrates and
    publishes version 1, the others find it done; none fails."""
    url = engine.url.render_as_string(hide_password=False)
    start = threading.Barrier(4)
    prepared: list = []
    failures: list[BaseException] = []

    def starting() -> None:
        start.wait()
        try:
            prepared.append(prepare_store(Settings(url, ROOT)))
        except BaseException as error:  # reported below, with its type
            failures.append(error)

    threads = [threading.Thread(target=starting) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for store in prepared:
        store.dispose()
    assert failures == []
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RuleSetVersion)) == 1
