"""An HTTP sink that records every POST's idempotency key and JSON body (with its path,
media type and Authorization header), on a port that
stays the same when it is stopped and started again (a destination going down); a
fault from :mod:`tests.faults` makes it answer late or hold a request."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.droppable_server import DroppableServer, reply
from tests.ports import free_port


@dataclass
class Received:
    key: str
    body: dict[str, Any]
    path: str = ""
    media_type: str = ""
    authorization: str | None = None


@dataclass
class RecordingSink:
    port: int = field(default_factory=free_port)
    # Called with each POST's number (1 for the first) before it is answered.
    fault: Callable[[int], None] | None = None
    most_at_once: int = 0  # the most POSTs in progress at one time
    posts: int = 0  # POSTs begun, repeats included
    _at_once: int = 0
    received: list[Received] = field(default_factory=list)
    _http: DroppableServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> None:
        if self._http is None:
            self._http = DroppableServer(self.port, self._answer, timeout=5)
        self._http.start()

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self._lock:
            self._at_once += 1
            self.most_at_once = max(self.most_at_once, self._at_once)
            self.posts += 1
            number = self.posts
        if self.fault is not None:
            self.fault(number)
        with self._lock:
            self._at_once -= 1
            self.received.append(Received(
                handler.headers.get("Idempotency-Key", ""), json.loads(body), handler.path,
                handler.headers.get("Content-Type", ""),
                handler.headers.get("Authorization")))
        reply(handler, 200)

    def stop(self) -> None:
        """Stop listening and drop every kept-alive connection, as a crash would."""
        if self._http is not None:
            self._http.stop()

    def keys(self) -> list[str]:
        with self._lock:
            return [r.key for r in self.received]
