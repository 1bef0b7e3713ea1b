"""``switchboard serve`` as a process of its own, for tests that kill it: started on
free ports with a given configuration and store, ready once /readyz says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.ports import free_port
from tests.waiting import LIMIT, wait_until


class ServeProcess:
    """One ``switchboard serve`` (or ``engine``); ``start()`` again after ``kill()``
    restarts it on the same ports, configuration and store."""

    def __init__(self, config: Path, database_url: str, log: Path, *args: str,
                 command: str = "serve", probes_apart: bool = False) -> None:
        """``probes_apart``: serve's probes on a health port of their own."""
        self.config = config
        self.database_url = database_url
        self.web_port = free_port()  # the health port, for ``engine``
        self.health_port = free_port() if probes_apart else self.web_port
        self._log = log
        self._args = args
        self._command = command
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, limit: float = LIMIT) -> None:
        port = "--port" if self._command == "serve" else "--health-port"
        apart = (["--health-port", str(self.health_port)]
                 if self.health_port != self.web_port else [])
        command = [sys.executable, "-m", "engine.cli", self._command,
                   "--config", str(self.config), "--database", self.database_url,
                   port, str(self.web_port), *apart, *self._args]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                             start_new_session=True)
        self._wait_ready(limit)

    def _wait_ready(self, limit: float) -> None:
        def ready() -> bool:
            assert self._process is not None
            if self._process.poll() is not None:
                raise AssertionError(f"serve exited with {self._process.returncode}; "
                                     f"see {self._log}")
            return self.ready()

        wait_until(ready, limit, f"serve to be ready (see {self._log})", every=0.1)

    def ready(self) -> bool:
        """Whether /readyz answers 200 now: the store is reachable, every part is up."""
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def kill(self) -> None:
        """SIGKILL the whole process group: the engine and its pipeline workers."""
        assert self._process is not None
        os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(30)

    def stop(self, limit: float = 30.0) -> int:
        """SIGTERM, as an operator's stop; returns the exit code."""
        if self._process is None or self._process.poll() is not None:
            return self._process.returncode if self._process else 0
        self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(limit)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(30)
            raise AssertionError("serve did not stop on SIGTERM") from None


def api_call(port: int, token: str, path: str, body: Any = None,
             method: str | None = None) -> Any:
    """One REST call to the web process on ``port`` as the token's user: the JSON
    answer. POST when a body is given, GET otherwise, unless ``method`` says."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method or ("GET" if body is None else "POST"),
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
