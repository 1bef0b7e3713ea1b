"""Scale-out on PostgreSQL: three ``switchboard engine`` processes over one database
share the work (each routes and delivers some of it), no delivery is made twice, and
each patient's messages reach the sink in the order they were received, although the
patients' messages are interleaved and arrive through all three engines."""

from __future__ import annotations

import urllib.request
from collections import defaultdict

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from tests.delivery_config import SINK, delivery_config, update
from tests.engine.store.conftest import _fresh_database
from tests.faults import Together
from tests.ports import free_port
from tests.recording_sink import RecordingSink
from tests.serve_process import ServeProcess
from tests.waiting import wait_until

PATIENTS = 12  # more chains than the engines have delivery workers
ENGINES = 3


def message(number: int) -> bytes:
    return update(f"X{number}", f"MRN{number % PATIENTS}")


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    prefix = f'{name}{{connection="{SINK}"}} '
    return sum(float(line[len(prefix):]) for line in lines if line.startswith(prefix))


def test_three_engines_share_the_work_without_double_delivery_or_reordering(
        postgres_server, tmp_path):
    total = 300
    url = _fresh_database(postgres_server)
    # An engine claims one delivery at a time, the oldest due, so three POSTs in flight
    # at once come from the three engines: the sink holds the first three until all
    # are in, and every engine delivers some, however busy the machine.
    sink = RecordingSink(fault=(together := Together(ENGINES)))
    sink.start()
    config = delivery_config(tmp_path / "config", sink.url)
    ports = [free_port() for _ in range(ENGINES)]
    engines = [ServeProcess(config, url, tmp_path / f"engine-{n}.log", "--mllp-port",
                            str(port), "--pipeline-workers", "1", "--delivery-workers", "1",
                            "--delivery-batch", "1", command="engine")
               for n, port in enumerate(ports)]
    clients: list[BlockingMllpClient] = []
    try:
        for engine in engines:
            engine.start()
        clients = [BlockingMllpClient("127.0.0.1", port, timeout=30) for port in ports]
        for number in range(total):  # round-robin over the engines, one at a time
            ack = parse(clients[number % ENGINES].send(message(number)))
            assert ack.get("MSA-1") == "AA"
        wait_until(lambda: len(sink.keys()) >= total, 120, "every delivery")
        keys = sink.keys()
        assert len(keys) == len(set(keys)) == total  # every message once, none twice
        arrivals: dict[int, list[int]] = defaultdict(list)
        for received in sink.received:
            number = int(received.body["message"]["control_id"][1:])
            arrivals[number % PATIENTS].append(number)
        for patient, numbers in arrivals.items():
            assert numbers == sorted(numbers), f"patient {patient} out of order"
        # Counted once each outcome is recorded, a moment after the sink has it.
        def delivered_counts() -> list[float] | None:
            counts = [metric(engine.web_port, "switchboard_delivered_total")
                      for engine in engines]
            return counts if sum(counts) >= total else None

        delivered = wait_until(delivered_counts, what="every outcome counted", every=0.1)
        assert sum(delivered) == total
        assert together.met.is_set(), "the engines never had a POST in flight at once"
        assert all(delivered), f"an engine delivered nothing: {delivered}"
    finally:
        for client in clients:
            client.close()
        for engine in engines:
            engine.stop()
        sink.stop()
