"""A hold checkpoint end to end, with ``switchboard serve`` as a process: a message
whose route holds it creates a review task and reaches nobody until a clinician
approves the task over REST; a rejected one is never sent. A registration sent after
them goes out at once: once it is delivered, the delivery worker has passed the held
ones, so their absence at the sink means something."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from engine.security.users import UserStore
from engine.store.database import open_engine
from engine.store.models import Delivery, JournalEntry
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
    store = open_engine(url)
    try:
        users = UserStore(store)
        nurse = users.add("nora", "clinician", "test")
        for control_id in ("H1", "H2"):
            send(mllp, control_id, "A08")

        def call(token: str, path: str, body: Any = None) -> Any:
            return api_call(serve.web_port, token, path, body)

        tasks = wait_until(lambda: (items := call(nurse, "/api/tasks?queue=review")
                                    ["items"]) and len(items) == 2 and items,
                           what="two review tasks")
        # Claims take the oldest first: had a held delivery been claimable, it would
        # have been sent in the pass that sent this later registration, or before.
        send(mllp, "R1", "A04")
        wait_until(lambda: delivered(store, "R1"), what="the registration's delivery")
        assert control_ids(sink) == ["R1"]
        operator = users.add("olive", "operator", "test")
        by_control_id = {}
        for task in tasks:
            assert task["due_at"] is not None
            message_id = call(nurse, f"/api/tasks/{task['id']}")["message_id"]
            control_id = call(operator, f"/api/messages/{message_id}")["control_id"]
            by_control_id[control_id] = task["id"]
        call(nurse, f"/api/tasks/{by_control_id['H1']}/approve", {"reason": "fine"})
        call(nurse, f"/api/tasks/{by_control_id['H2']}/reject",
             {"reason": "wrong patient"})
        wait_until(lambda: delivered(store, "H1"), what="the approved update's delivery")
        send(mllp, "R2", "A04")
        wait_until(lambda: delivered(store, "R2"), what="the second registration's delivery")
        assert sorted(control_ids(sink)) == ["H1", "R1", "R2"]
        shown = call(nurse, f"/api/tasks/{by_control_id['H2']}")
        assert [h["status"] for h in shown["holds"]] == ["cancelled"]
    finally:
        serve.stop()
        sink.stop()
        store.dispose()


def send(mllp: int, control_id: str, event: str) -> None:
    with BlockingMllpClient("127.0.0.1", mllp, timeout=30) as client:
        ack = parse(client.send(update(control_id, f"MRN-{control_id}", event)))
    assert ack.get("MSA-1") == "AA"


def delivered(store, control_id: str) -> bool:
    """Whether the message's delivery is recorded as delivered: recorded with the other
    outcomes of its claim, so everything claimed with it has reached the sink too."""
    with Session(store) as session:
        return session.scalars(select(Delivery.status).join(
            JournalEntry, JournalEntry.id == Delivery.journal_id).where(
            JournalEntry.control_id == control_id)).first() == "delivered"


def control_ids(sink: RecordingSink) -> list[str]:
    return [r.body["message"]["control_id"] for r in sink.received]
