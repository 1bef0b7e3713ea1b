"""The chaos run's destination: a real HTTP server that writes a line for every POST it
receives (idempotency key, control id, patient, sequence, the status it answers) to a
file and fsyncs it before answering, so the record survives whatever the run does to
the engine. It can go down and come back on the same port, refuse some patients' POSTs
(409), answer late, or hold one POST while a process is killed."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.droppable_server import DroppableServer, reply
from tests.faults import Hold, Late
from tests.ports import free_port

CONFLICT = 409


def parse_control_id(control_id: str) -> tuple[int, int]:
    """(patient, sequence) from a chaos control id ``C<patient>-<sequence>``."""
    patient, sequence = control_id[1:].split("-")
    return int(patient), int(sequence)


class ChaosSink:
    """Records to ``record`` (JSON lines); ``start()`` again after ``stop()`` listens on
    the same port, as a destination that comes back."""

    def __init__(self, record: Path) -> None:
        self.record = record
        self.port = free_port()
        self.posts = 0  # POSTs received, repeats and refusals included
        self._file = record.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        # A killed engine's dropped connection is no error of the sink.
        self._http = DroppableServer(self.port, self._answer, timeout=30, backlog=128,
                                     quiet_errors=True)
        self._refused: frozenset[int] = frozenset()
        self._taken: set[str] = set()  # keys answered 200
        self._answered: set[str] = set()  # of those, the keys whose answer was written
        self._stall: Hold | None = None  # holds every new delivery while set
        self._faults: list[Callable[[], bool]] = []  # each says whether it is spent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    # ---- faults ------------------------------------------------------------------------

    def hold_next(self) -> Hold:
        """Hold the next new delivery's POST (after recording it) until released."""
        hold = Hold()
        self._add_fault(lambda: (hold.hold(), True)[1])
        return hold

    def stall(self) -> Hold:
        """Hold every new delivery's POST (after recording it) until ``resume()``: the
        destination stops answering, and each delivery worker ends up waiting on it."""
        self._stall = Hold()
        return self._stall

    def resume(self) -> None:
        if self._stall is not None:
            self._stall.release()
            self._stall = None

    def answered(self) -> int:
        """How many deliveries (distinct keys) were answered 200."""
        with self._lock:
            return len(self._answered)

    def answer_late(self, count: int, seconds: float) -> threading.Event:
        """Answer the next ``count`` new deliveries' POSTs ``seconds`` late; the event
        is set once the last of them has been answered."""
        late, done, left = Late(seconds), threading.Event(), [count]

        def slow() -> bool:
            late(0)
            with self._lock:
                left[0] -= 1
                spent = left[0] <= 0
            if spent:
                done.set()
            return spent

        for _ in range(count):
            self._add_fault(slow)
        return done

    def refuse(self, patients: frozenset[int]) -> None:
        """Answer 409 (a conflict) to every POST for these patients, until ``accept``."""
        self._refused = patients

    def accept(self) -> None:
        self._refused = frozenset()

    def _add_fault(self, fault: Callable[[], bool]) -> None:
        with self._lock:
            self._faults.append(fault)

    def _next_fault(self) -> Callable[[], bool] | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    # ---- serving -----------------------------------------------------------------------

    def _receive(self, key: str, path: str, body: bytes) -> tuple[int, bool]:
        """Record one POST durably; the status to answer, and whether the key is new
        (taken for the first time)."""
        document: dict[str, Any] = json.loads(body)
        control_id = str(document["message"]["control_id"])
        patient, sequence = parse_control_id(control_id)
        identifiers = (document.get("patient") or {}).get("identifiers") or [{}]
        status = CONFLICT if patient in self._refused else 200
        line = json.dumps({"key": key, "control_id": control_id, "patient": patient,
                           "sequence": sequence, "mrn": identifiers[0].get("value"),
                           "path": path, "status": status, "at": time.time()})
        with self._lock:
            self.posts += 1
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            new = status == 200 and key not in self._taken
            if status == 200:
                self._taken.add(key)
        return status, new

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        key = handler.headers.get("Idempotency-Key", "")
        status, new = self._receive(key, handler.path, body)
        # Faults take new deliveries: a kill held on a repeat would come amid the
        # repeats of the last kill, and count them again.
        if new and (fault := self._next_fault()) is not None:
            fault()
        if new and (stall := self._stall) is not None:
            stall.hold()
        reply(handler, status)
        if status == 200:
            with self._lock:
                self._answered.add(key)

    def start(self) -> None:
        self._http.start()

    def stop(self) -> None:
        """Stop listening and drop every kept-alive connection, as a crash would."""
        self._http.stop()

    @property
    def up(self) -> bool:
        return self._http.up

    def close(self) -> None:
        self.stop()
        self._file.close()


def read_record(record: Path) -> list[dict[str, Any]]:
    """Every POST the sink recorded, in the order received."""
    with record.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
