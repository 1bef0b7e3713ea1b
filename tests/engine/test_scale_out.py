"""Scale-out on PostgreSQL: three ``switchboard engine`` processes over one database
share the work (each routes and delivers some of it), no delivery is made twice, and
each patient's messages reach the sink in the order they were received, although the
patients' messages are interleaved and arrive through all three engines. The load
starts once every engine has delivered a warm-up message."""

from __future__ import annotations

import urllib.request
from collections import defaultdict

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from tests.delivery_config import SINK, delivery_config, update
from tests.engine.store.conftest import _fresh_database
from tests.faults import Late
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


def delivered_by(engines: list[ServeProcess]) -> list[float]:
    return [metric(engine.web_port, "switchboard_delivered_total") for engine in engines]


def warm_up(clients: list[BlockingMllpClient], engines: list[ServeProcess],
            sink: RecordingSink) -> int:
    """Send messages one at a time, each once the last has arrived, until every engine
    has delivered one; returns how many were sent. An engine is ready before its
    delivery process is: on a busy machine that process can take seconds longer to
    start, and the others would deliver the whole load meanwhile."""
    sent = 0
    while not all(delivered_by(engines)):
        assert sent < 200, f"an engine delivered nothing: {delivered_by(engines)}"
        ack = parse(clients[sent % ENGINES].send(update(f"W{sent}", f"MRN{sent % PATIENTS}")))
        assert ack.get("MSA-1") == "AA"
        sent += 1
        wait_until(lambda count=sent: len(sink.keys()) >= count, what=f"warm-up {sent}")
    return sent


def test_three_engines_share_the_work_without_double_delivery_or_reordering(
        postgres_server, tmp_path):
    total = 300
    url = _fresh_database(postgres_server)
    # Each claim takes a while, so the others claim meanwhile, even when the machine is
    # busy enough to leave one engine's niced delivery process waiting for a CPU.
    sink = RecordingSink(fault=Late(0.05))
    sink.start()
    config = delivery_config(tmp_path / "config", sink.url)
    ports = [free_port() for _ in range(ENGINES)]
    engines = [ServeProcess(config, url, tmp_path / f"engine-{n}.log", "--mllp-port",
                            str(port), "--pipeline-workers", "1", "--delivery-workers", "2",
                            "--delivery-batch", "10", command="engine")
               for n, port in enumerate(ports)]
    clients: list[BlockingMllpClient] = []
    try:
        for engine in engines:
            engine.start()
        clients = [BlockingMllpClient("127.0.0.1", port, timeout=30) for port in ports]
        warm = warm_up(clients, engines, sink)
        before = wait_until(lambda: sum(d := delivered_by(engines)) >= warm and d,
                            what="the warm-up's deliveries counted")
        for number in range(total):  # round-robin over the engines, one at a time
            ack = parse(clients[number % ENGINES].send(message(number)))
            assert ack.get("MSA-1") == "AA"
        wait_until(lambda: len(sink.keys()) >= warm + total, 120, "every delivery")
        keys = sink.keys()
        assert len(keys) == len(set(keys)) == warm + total  # every message once, none twice
        arrivals: dict[int, list[int]] = defaultdict(list)
        for received in sink.received:
            control_id = received.body["message"]["control_id"]
            if control_id.startswith("X"):
                number = int(control_id[1:])
                arrivals[number % PATIENTS].append(number)
        for patient, numbers in arrivals.items():
            assert numbers == sorted(numbers), f"patient {patient} out of order"
        # Counted once each outcome is recorded, a moment after the sink has it.
        after = wait_until(lambda: sum(d := delivered_by(engines)) >= warm + total and d,
                           what="the load's deliveries counted")
        assert sum(after) == warm + total
        shares = [a - b for a, b in zip(after, before, strict=True)]
        assert all(shares), f"an engine delivered none of the load: {shares}"
    finally:
        for client in clients:
            client.close()
        for engine in engines:
            engine.stop()
        sink.stop()
