"""A threaded HTTP server on a port that stays the same when it is stopped and started
again, and whose stop drops every kept-alive connection as a crash would: the ground
under the test suite's destination (:mod:`tests.recording_sink`) and the chaos run's
(:mod:`bench.chaos.sink`), each of which says only how it answers a POST."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Given the request's handler and body; answers it (see ``reply``).
PostHandler = Callable[[BaseHTTPRequestHandler, bytes], None]


def reply(handler: BaseHTTPRequestHandler, status: int) -> None:
    """An empty answer with ``status``; a caller that hung up meanwhile (a killed
    engine) is no error of the destination."""
    with contextlib.suppress(OSError):
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


class DroppableServer:
    def __init__(self, port: int, on_post: PostHandler, *, timeout: float,
                 backlog: int = 5, quiet_errors: bool = False) -> None:
        self.port = port
        self._on_post = on_post
        self._timeout = timeout
        self._backlog = backlog
        self._quiet_errors = quiet_errors
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def up(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = owner._timeout

            def setup(self) -> None:
                super().setup()
                with owner._lock:
                    owner._connections.append(self.connection)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner._on_post(self, body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = owner._backlog

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not owner._quiet_errors:
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop every kept-alive connection, as a crash would."""
        if self._server is None:
            return
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
