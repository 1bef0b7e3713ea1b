"""The chaos run's load: senders that behave as real interface engines do. Each MLLP
connection carries its own patients' messages, each patient's numbered in order; a
message is sent again, with the same MSH-10, until it is ACKed AA (reconnecting after
any error), and only then is that patient's next message sent. The run may gate the
load at a count of ACKs, so that each fault comes while the load is still going."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine.connectors.mllp.client import AckTimeout, BlockingMllpClient, MllpConnectionError
from engine.errors import SwitchboardError
from engine.hl7v2 import parse
from tests.delivery_config import update


def control_id(patient: int, sequence: int) -> str:
    return f"C{patient:03d}-{sequence:05d}"


def mrn(patient: int) -> str:
    return f"CHAOS{patient:03d}"


def message(patient: int, sequence: int) -> bytes:
    return update(control_id(patient, sequence), mrn(patient))


def per_patient(messages: int, patients: int) -> list[int]:
    """How many messages each patient has: ``messages`` shared out as evenly as can be."""
    return [messages // patients + (1 if p < messages % patients else 0)
            for p in range(patients)]


class Load:
    """``connections`` senders to ``ports`` (connection i to port i mod len(ports)),
    patient p on connection p mod ``connections``. ``acked`` counts AA answers to
    distinct messages; ``refused`` counts AE/AR answers and lost connections."""

    def __init__(self, ports: list[int], messages: int, patients: int,
                 connections: int = 4, retry_pause: float = 0.1) -> None:
        self.total = messages
        self.counts = per_patient(messages, patients)
        self.acked = 0
        self.refused = 0
        self.acks: list[tuple[str, float]] = []  # (control id, when) of each first AA
        self.errors: list[str] = []  # why a sender stopped, if one did
        self._gate = 0
        self._turn = threading.Condition()
        self._stop = threading.Event()
        self._retry_pause = retry_pause
        self._senders = [
            threading.Thread(target=self._send_all, name=f"chaos-sender-{n}", daemon=True,
                             args=(ports[n % len(ports)],
                                   [p for p in range(patients) if p % connections == n]))
            for n in range(connections)]

    def start(self) -> None:
        for sender in self._senders:
            sender.start()

    def allow(self, count: int) -> None:
        """Let the senders go on until ``count`` messages are ACKed (no further)."""
        with self._turn:
            self._gate = max(self._gate, min(count, self.total))
            self._turn.notify_all()

    def finished(self) -> bool:
        return self.acked >= self.total

    def alive(self) -> bool:
        return any(sender.is_alive() for sender in self._senders)

    def stop(self) -> None:
        self._stop.set()
        self.allow(self.total)
        for sender in self._senders:
            sender.join(30)

    def _send_all(self, port: int, patients: list[int]) -> None:
        longest = max((self.counts[p] for p in patients), default=0)
        client = BlockingMllpClient("127.0.0.1", port, timeout=30)
        try:
            for sequence in range(longest):
                for patient in patients:
                    if sequence < self.counts[patient]:
                        if not self._wait_turn():
                            return
                        client = self._until_accepted(client, port, patient, sequence)
        except Exception as error:  # the run reports it; it must not pass unseen
            self.errors.append(f"{type(error).__name__}: {error}")
            raise
        finally:
            client.close()

    def _wait_turn(self) -> bool:
        with self._turn:
            self._turn.wait_for(lambda: self.acked < self._gate or self._stop.is_set())
        return not self._stop.is_set()

    def _until_accepted(self, client: BlockingMllpClient, port: int, patient: int,
                        sequence: int) -> BlockingMllpClient:
        payload = message(patient, sequence)
        while not self._stop.is_set():
            try:
                code = parse(client.send(payload)).get("MSA-1") or ""
            except (MllpConnectionError, AckTimeout, OSError, SwitchboardError):
                client.close()
                self._count_refusal()
                client = BlockingMllpClient("127.0.0.1", port, timeout=30)
                continue
            if code == "AA":
                with self._turn:
                    self.acked += 1
                    self.acks.append((control_id(patient, sequence), time.time()))
                    self._turn.notify_all()
                return client
            self._count_refusal()  # AE while the store is away: the same message again
        return client

    def _count_refusal(self) -> None:
        with self._turn:
            self.refused += 1
        self._stop.wait(self._retry_pause)


def wait_for_acks(load: Load, count: int, limit: float,
                  wait: Callable[..., object]) -> None:
    """Wait (with ``wait``, tests.waiting.wait_until's shape) until ``count`` ACKs."""
    def reached() -> bool:
        if load.errors:
            raise AssertionError(f"a sender stopped: {load.errors[0]}")
        return load.acked >= count

    wait(reached, limit, f"{count} ACKs")
