"""``switchboard serve`` in this test process, on a thread of its own, so that a test can
reach into it (inject a fault, read its engine) while it runs on real sockets."""

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
from engine.service import EngineProcess, Settings, run
from tests.delivery_config import update


@dataclass
class Serving:
    process: EngineProcess
    web: int
    mllp: int
    # Where the probes answer: the web port, unless given a health port of their own.
    health: int

    def readiness(self) -> tuple[int, dict[str, Any]]:
        return _answer(urllib.request.Request(f"http://127.0.0.1:{self.health}/readyz"))

    def ingest(self, connection: str, token: str, body: bytes,
               content_type: str) -> tuple[int, dict[str, Any]]:
        """``body`` POSTed to the HTTP ingest ``connection`` with a bearer ``token``:
        the status and the JSON answer, whatever the status."""
        return _answer(urllib.request.Request(
            f"http://127.0.0.1:{self.web}/ingest/{connection}", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type}))

    def send(self, control_id: str, patient: str) -> str:
        """An ordinary ADT^A08 over MLLP; its MSA-1."""
        with BlockingMllpClient("127.0.0.1", self.mllp, timeout=30) as client:
            return parse(client.send(update(control_id, patient))).get("MSA-1") or ""


def _answer(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:  # closed now: a leaked socket fails whichever test collects it
            return error.code, json.loads(error.read())


@contextmanager
def serving(config: Path, database_url: str, **settings: Any) -> Iterator[Serving]:
    """Serve ``config`` over ``database_url`` on free ports until the block ends;
    ``settings`` override the Settings (pipeline on a thread by default; health_port=0
    puts the probes on a free port of their own)."""
    options = {"web_port": 0, "mllp_port_override": 0,
               "pipeline_workers": 0, **settings}
    ready = threading.Event()
    state: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def started(process: EngineProcess | None, servers: list[Any]) -> None:
        assert process is not None
        state["serving"] = Serving(process, servers[0].server_port,
                                   process.listeners["ehr-adt-feed"].port,
                                   servers[-1].server_port)
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(run(Settings(database_url, config, **options),
                                    engine_part=True, web_part=True, started=started,
                                    stop=stop))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "serve did not start"
        yield state["serving"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()
    assert not thread.is_alive(), "serve did not stop"
