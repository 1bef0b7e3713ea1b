"""Crash safety, with real processes, sockets and databases: ``switchboard serve`` is
killed with SIGKILL mid-load and restarted three times, or its PostgreSQL is restarted
mid-load, while a sender keeps sending over MLLP and a recording HTTP sink receives.
Every ACKed message arrives at least once with its idempotency key, repeats are bounded
by what was in flight at each kill, and each patient's messages arrive in order.

The faults come when the load reaches a point, not after a while: the sender may send
only as far as the test allows, and the sink holds a chosen POST, so that each kill
finds the load unfinished and a delivery in flight whatever the machine's speed."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from engine.connectors.mllp.client import AckTimeout, BlockingMllpClient, MllpConnectionError
from engine.hl7v2 import parse
from engine.store.database import open_engine
from engine.store.models import Delivery
from tests.delivery_config import delivery_config, update
from tests.faults import Hold
from tests.ports import free_port
from tests.postgres_cluster import PrivateCluster
from tests.recording_sink import RecordingSink
from tests.serve_process import ServeProcess
from tests.waiting import wait_until

PATIENTS = 5


def message(number: int) -> bytes:
    return update(f"S{number}", f"MRN{number % PATIENTS}")


class Sender(threading.Thread):
    """Sends messages 0..total-1 in order on one connection, as far as ``allow`` lets
    it; a message is sent again until it is ACKed AA, across broken connections, as an
    EHR's interface does. After a refusal (AE, a lost connection) it sends again once
    ``ready`` says the engine is back."""

    def __init__(self, port: int, total: int, ready: Callable[[], bool]) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.total = total
        self.ready = ready
        self.acked = 0
        self.refused = 0  # AE answers and lost connections
        self.codes: list[str] = []
        self._allowed = 0
        self._turn = threading.Condition()

    def allow(self, count: int) -> None:
        """Let the sender send the messages numbered below ``count``."""
        with self._turn:
            self._allowed = max(self._allowed, min(count, self.total))
            self._turn.notify_all()

    def run(self) -> None:
        client = BlockingMllpClient("127.0.0.1", self.port, timeout=10)
        try:
            while self.acked < self.total:
                with self._turn:
                    self._turn.wait_for(lambda: self.acked < self._allowed)
                try:
                    code = parse(client.send(message(self.acked))).get("MSA-1") or ""
                except (MllpConnectionError, AckTimeout, OSError):
                    client.close()
                    self._refused()
                    client = BlockingMllpClient("127.0.0.1", self.port, timeout=10)
                    continue
                self.codes.append(code)
                if code == "AA":
                    self.acked += 1
                else:  # the store is away: the listener says AE, never AA
                    self._refused()
        finally:
            client.close()

    def _refused(self) -> None:
        self.refused += 1
        wait_until(self.ready, what="the engine to be ready again", every=0.1)

    def wait_for(self, count: int, limit: float) -> None:
        def acked() -> bool:
            assert self.is_alive() or self.acked >= self.total, "the sender stopped"
            return self.acked >= count

        wait_until(acked, limit, f"{count} ACKs")


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
    sink = RecordingSink()
    sink.start()
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    serve, port = serving(tmp_path, url, sink)
    serve.start()
    # The sink holds the 100th, 250th and 400th POST; while one is held, the sender
    # is let send 50 messages more, and the kill comes once 10 of them are ACKed: the
    # load is never over by then, and a delivery is in flight.
    milestones = [100, 250, 400]
    sink.fault = hold = Hold(at=milestones[0])
    sender = Sender(port, total, serve.ready)
    sender.allow(milestones[0])
    sender.start()
    repeats_allowed = 0
    kills = []
    try:
        for post, following in zip(milestones, [*milestones[1:], None], strict=True):
            wait_until(hold.caught.is_set, 120, f"POST {post} at the sink")
            acked = sender.acked
            sender.allow(acked + 50)
            wait_until(lambda acked=acked: sender.acked >= acked + 10, 120, "10 more ACKs")
            serve.kill()
            kills.append((sender.acked, in_flight(url)))
            repeats_allowed += kills[-1][1]
            killed_with = hold
            if following is not None:  # set while no engine runs: no POST can pass it
                sink.fault = hold = Hold(at=following)
                sender.allow(following)
            killed_with.release()  # its engine is gone: the answer goes nowhere
            serve.start()
        assert all(acked < total for acked, _ in kills), "killed after the load ended"
        assert all(count for _, count in kills), "a kill found no delivery in flight"
        sender.allow(total)
        sender.wait_for(total, limit=120)
        check_arrivals(sink, total, repeats_allowed)
    finally:
        sender.allow(total)
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
        sender = Sender(port, total, serve.ready)
        sender.allow(total)
        sender.start()
        sender.wait_for(100, limit=120)
        cluster.stop()
        # The outage has reached the load: ingest answers AE; pipeline and delivery wait.
        wait_until(lambda: sender.refused > 0, what="a message refused while the store is down")
        cluster.start()
        sender.wait_for(total, limit=180)
        # At most what two delivery workers can hold (a batch of 100 each) is sent twice.
        check_arrivals(sink, total, repeats_allowed=2 * 100)
    finally:
        serve.stop()
        sink.stop()
        cluster.destroy()
