"""Crash safety, with real processes, sockets and databases: ``switchboard serve`` is
killed with SIGKILL mid-load and restarted three times, or its PostgreSQL is restarted
mid-load, while a sender keeps sending over MLLP and a recording HTTP sink receives.
Every ACKed message arrives at least once with its idempotency key, repeats are bounded
by what was in flight at each kill, and each patient's messages arrive in order."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import func, select

from engine.connectors.mllp.client import AckTimeout, BlockingMllpClient, MllpConnectionError
from engine.hl7v2 import parse
from engine.store.database import open_engine
from engine.store.models import Delivery
from tests.delivery_config import delivery_config, update
from tests.faults import Late
from tests.ports import free_port
from tests.postgres_cluster import PrivateCluster
from tests.recording_sink import RecordingSink
from tests.serve_process import ServeProcess
from tests.waiting import wait_until

PATIENTS = 5


def message(number: int) -> bytes:
    return update(f"S{number}", f"MRN{number % PATIENTS}")


class Sender(threading.Thread):
    """Sends messages 0..total-1 in order on one connection; a message is sent again
    until it is ACKed AA, across broken connections, as an EHR's interface does."""

    def __init__(self, port: int, total: int, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.total = total
        self.pause = pause
        self.acked = 0
        self.codes: list[str] = []

    def run(self) -> None:
        client = BlockingMllpClient("127.0.0.1", self.port, timeout=10)
        try:
            while self.acked < self.total:
                try:
                    code = parse(client.send(message(self.acked))).get("MSA-1") or ""
                except (MllpConnectionError, AckTimeout, OSError):
                    client.close()
                    time.sleep(0.2)
                    client = BlockingMllpClient("127.0.0.1", self.port, timeout=10)
                    continue
                self.codes.append(code)
                if code == "AA":
                    self.acked += 1
                    time.sleep(self.pause)
                else:  # the store is away: the listener says AE, never AA
                    time.sleep(0.2)
        finally:
            client.close()

    def wait_for(self, count: int, limit: float) -> None:
        deadline = time.monotonic() + limit
        while self.acked < count:
            assert self.is_alive() or self.acked >= self.total, "the sender stopped"
            assert time.monotonic() < deadline, f"only {self.acked} of {count} ACKed"
            time.sleep(0.05)


def check_arrivals(sink: RecordingSink, total: int, repeats_allowed: int) -> None:
    wait_until(lambda: len(set(sink.keys())) >= total, 120, "every message at the sink")
    keys = sink.keys()
    assert len(set(keys)) == total  # one delivery per ACKed message, none lost
    assert len(keys) - total <= repeats_allowed
    control_ids = {r.key: r.body["message"]["control_id"] for r in sink.received}
    assert sorted(control_ids.values(), key=lambda c: int(c[1:])) == [
        f"S{n}" for n in range(total)]
    first_seen: dict[int, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for received in sink.received:
        if received.key not in seen:
            seen.add(received.key)
            number = int(control_ids[received.key][1:])
            first_seen[number % PATIENTS].append(number)
    for patient, numbers in first_seen.items():
        assert numbers == sorted(numbers), f"patient {patient} out of order"


def in_flight(database_url: str) -> int:
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(Delivery)
                                         .where(Delivery.status == "in_flight")) or 0)
    finally:
        engine.dispose()


def serving(tmp_path: Path, database_url: str, sink: RecordingSink) -> tuple[ServeProcess, int]:
    port = free_port()
    config = delivery_config(tmp_path / "config", sink.url, mllp_port=port)
    serve = ServeProcess(config, database_url, tmp_path / "serve.log",
                         "--pipeline-workers", "1", "--delivery-workers", "2")
    return serve, port


def test_sigkill_mid_load_three_times_loses_nothing_and_keeps_order(tmp_path):
    total = 600
    sink = RecordingSink(fault=Late(0.01))
    sink.start()
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    serve, port = serving(tmp_path, url, sink)
    serve.start()
    # Paced, so that every kill finds messages arriving, routing and being delivered.
    sender = Sender(port, total, pause=0.01)
    sender.start()
    repeats_allowed = 0
    kills = []
    try:
        for delivered in (100, 250, 400):
            wait_until(lambda n=delivered: len(sink.keys()) >= n, 120, f"{delivered} POSTs")
            serve.kill()
            kills.append((sender.acked, in_flight(url)))
            repeats_allowed += kills[-1][1]
            serve.start()
        assert all(acked < total for acked, _ in kills), "killed after the load ended"
        assert any(count for _, count in kills), "no kill found a delivery in flight"
        sender.wait_for(total, limit=120)
        check_arrivals(sink, total, repeats_allowed)
    finally:
        serve.stop()
        sink.stop()
    sender.join(10)


def test_postgres_restarted_mid_load_loses_nothing(tmp_path):
    total = 300
    cluster = PrivateCluster()  # its own cluster: a shared server is never stopped
    cluster.start()
    sink = RecordingSink()
    sink.start()
    serve, port = serving(tmp_path, cluster.url, sink)
    try:
        serve.start()
        sender = Sender(port, total)
        sender.start()
        sender.wait_for(100, limit=120)
        cluster.stop()
        time.sleep(2)  # ingest answers AE, pipeline and delivery wait
        cluster.start()
        sender.wait_for(total, limit=180)
        # At most what two delivery workers can hold (a batch of 100 each) is sent twice.
        check_arrivals(sink, total, repeats_allowed=2 * 100)
    finally:
        serve.stop()
        sink.stop()
        cluster.destroy()
