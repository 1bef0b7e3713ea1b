"""An HTTP sink that records every POST's idempotency key and JSON body (with its path,
media type and Authorization header), on a port that
stays the same when it is stopped and started again (a destination going down); a
fault from :mod:`tests.faults` makes it answer late or hold a request."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _connections: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5

            def setup(self) -> None:
                super().setup()
                with sink._lock:
                    sink._connections.append(self.connection)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink._lock:
                    sink._at_once += 1
                    sink.most_at_once = max(sink.most_at_once, sink._at_once)
                    sink.posts += 1
                    number = sink.posts
                if sink.fault is not None:
                    sink.fault(number)
                with sink._lock:
                    sink._at_once -= 1
                    sink.received.append(Received(
                        self.headers.get("Idempotency-Key", ""), json.loads(body), self.path,
                        self.headers.get("Content-Type", ""),
                        self.headers.get("Authorization")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop every kept-alive connection, as a crash would."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            with self._lock:
                for connection in self._connections:
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
                self._connections.clear()
            assert self._thread is not None
            self._thread.join(10)
            self._server = None

    def keys(self) -> list[str]:
        with self._lock:
            return [r.key for r in self.received]
