"""A recording HTTP/1.1 server on 127.0.0.1 for the sink tests: it keeps every request
it reads, counts the connections it accepts and closes, and answers as a test scripts."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.faults import Hold
from tests.waiting import wait_until


class Then(Enum):
    """What the server does with a request."""

    ANSWER = "answer"  # answer and keep the connection
    ANSWER_AND_DROP = "answer-and-drop"  # answer as if keeping it, then close it silently
    DROP = "drop"  # close the connection without answering
    HANG = "hang"  # answer nothing until the test ends: held by ``Recorder.hold``


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    then: Then = Then.ANSWER


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    connection: int


class Recorder(ThreadingHTTPServer):
    """Answers with the scripted replies in order, then 200 with no body."""

    daemon_threads = False  # so that server_close() waits for every handler

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.connections = 0
        self.closed = 0
        self.hold = Hold()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def wait_closed(self, count: int) -> None:
        """Wait until the server has closed ``count`` connections."""
        wait_until(lambda: self.closed >= count, what=f"{count} closed connections")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = 5  # a connection nobody closes ends the handler, and the test, anyway
    server: Recorder

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.number = self.server.connections

    def finish(self) -> None:
        super().finish()
        with self.server.lock:
            self.server.closed += 1

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.server.lock:
            self.server.requests.append(
                Recorded(self.command, self.path, headers, body, self.number))
            reply = self.server.replies.popleft() if self.server.replies else Reply()
        self._reply(reply)

    do_PUT = do_PATCH = do_GET = do_POST

    def _reply(self, reply: Reply) -> None:
        if reply.then is Then.HANG:
            self.server.hold.hold()
        if reply.then in (Then.HANG, Then.DROP):
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
        self.close_connection = reply.then is Then.ANSWER_AND_DROP

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read what was recorded."""


@contextmanager
def running() -> Iterator[Recorder]:
    """A recorder serving in a thread; on exit, every connection it holds is closed."""
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.hold.release()
        server.shutdown()
        thread.join()
        server.server_close()
