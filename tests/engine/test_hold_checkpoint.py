"""A hold checkpoint end to end, with ``switchboard serve`` as a process: a message
whose route holds it creates a review task and reaches nobody until a clinician
approves the task over REST; a rejected one is never sent."""

from __future__ import annotations

import time
from typing import Any

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from engine.security.users import UserStore
from engine.store.database import open_engine
from tests.delivery_config import delivery_config, update
from tests.ports import free_port
from tests.recording_sink import RecordingSink
from tests.serve_process import ServeProcess, api_call
from tests.waiting import wait_until


def test_a_held_message_waits_for_a_clinicians_approval(tmp_path):
    sink = RecordingSink()
    sink.start()
    mllp = free_port()
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    config = delivery_config(tmp_path / "config", sink.url, mllp_port=mllp, hold=True)
    serve = ServeProcess(config, url, tmp_path / "serve.log")
    serve.start()
    try:
        users = UserStore(open_engine(url))
        nurse = users.add("nora", "clinician", "test")
        with BlockingMllpClient("127.0.0.1", mllp, timeout=30) as client:
            for control_id in ("H1", "H2"):
                ack = parse(client.send(update(control_id, f"MRN-{control_id}")))
                assert ack.get("MSA-1") == "AA"

        def call(token: str, path: str, body: Any = None) -> Any:
            return api_call(serve.web_port, token, path, body)

        tasks = wait_until(lambda: (items := call(nurse, "/api/tasks?queue=review")
                                    ["items"]) and len(items) == 2 and items,
                           what="two review tasks")
        time.sleep(1.0)  # time enough for a delivery that should not happen
        assert sink.received == []
        operator = users.add("olive", "operator", "test")
        by_control_id = {}
        for task in tasks:
            assert task["due_at"] is not None
            message_id = call(nurse, f"/api/tasks/{task['id']}")["message_id"]
            control_id = call(operator, f"/api/messages/{message_id}")["control_id"]
            by_control_id[control_id] = task["id"]
        call(nurse, f"/api/tasks/{by_control_id['H1']}/approve", {"note": "fine"})
        call(nurse, f"/api/tasks/{by_control_id['H2']}/reject",
             {"reason": "wrong patient"})
        wait_until(lambda: len(sink.received) == 1, what="the approved update")
        time.sleep(1.0)
        assert [r.body["message"]["control_id"] for r in sink.received] == ["H1"]
        shown = call(nurse, f"/api/tasks/{by_control_id['H2']}")
        assert [h["status"] for h in shown["holds"]] == ["cancelled"]
    finally:
        serve.stop()
        sink.stop()
