"""A destination that is down, end to end with real processes and sockets: ``switchboard
serve`` retries each delivery as the policy says (three attempts, a second apart), then
raises an exception item with its owner and recovery procedure; once the destination is
back, an operator's retry through the REST API delivers every message. Nothing is lost."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from engine.security.users import UserStore
from engine.store.database import open_engine
from tests.delivery_config import SINK, delivery_config, update
from tests.ports import free_port
from tests.recording_sink import RecordingSink
from tests.serve_process import ServeProcess, api_call
from tests.waiting import wait_until


def message(number: int) -> bytes:
    return update(f"D{number}", f"MRN{number}")


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def call(self, path: str, method: str = "GET") -> Any:
        return api_call(self.port, self.token, "/api" + path,
                        {} if method == "POST" else None, method)

    def open_exceptions(self) -> list[dict[str, Any]]:
        return self.call(f"/exceptions?status=open&connection={SINK}")["items"]


def test_a_destination_down_is_retried_then_dead_lettered_then_recovered(tmp_path):
    sink = RecordingSink()  # not started: the destination is down
    mllp = free_port()
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    serve = ServeProcess(delivery_config(tmp_path / "config", sink.url, mllp_port=mllp), url,
                         tmp_path / "serve.log", "--pipeline-workers", "0")
    serve.start()
    try:
        users = open_engine(url)
        token = UserStore(users).add("olive", "operator", "test")
        users.dispose()
        api = Api(serve.web_port, token)
        with BlockingMllpClient("127.0.0.1", mllp, timeout=30) as client:
            for number in range(3):
                assert parse(client.send(message(number))).get("MSA-1") == "AA"
        items = wait_until(lambda: len(found := api.open_exceptions()) == 3 and found,
                           what="an exception item for each delivery")
        for item in items:
            assert (item["error_class"], item["owner_role"]) == ("transport_error", "operator")
            assert item["recovery_procedure"] == "Start the test sink again."
            detail = api.call(f"/exceptions/{item['id']}")
            assert detail["delivery"]["attempts"] == 3
            assert detail["delivery"]["status"] == "dead"
            # Three attempts a second apart (fixed 1 s, ±0 jitter): the dead letter, made
            # at the third, comes at least two seconds after the message was received.
            received = api.call(f"/messages/{detail['message_id']}")["received_at"]
            assert (datetime.fromisoformat(item["created_at"])
                    - datetime.fromisoformat(received)) >= timedelta(seconds=2)
        assert sink.received == []
        sink.start()  # the destination is back
        for item in items:
            api.call(f"/exceptions/{item['id']}/retry", method="POST")
        wait_until(lambda: len(set(sink.keys())) == 3, what="the three deliveries")
        assert sorted(r.body["message"]["control_id"] for r in sink.received) == [
            "D0", "D1", "D2"]
        assert api.open_exceptions() == []
    finally:
        serve.stop()
        sink.stop()
