"""schemathesis against the REST API's own OpenAPI document, on a live web process (real
sockets on 127.0.0.1) over a store seeded as a working day leaves it: messages routed
by the real pipeline, deliveries, exceptions, tasks and rule-set versions at each step
of their review. Shared by tests/admin/test_api_conformance.py (a bounded run) and
bench/api_conformance.py (the full run); schemathesis runs as its own process, so its
imports and warnings stay out of the test process."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.ingest import Ingestor
from engine.journal import Journal, Received
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.security.users import UserStore
from engine.service import Settings, start_web
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from tests.ports import free_port
from tests.queue_rows import (
    PEOPLE,
    ROOT,
    delivery,
    entry,
    exception_item,
    held_review,
    referral_task,
    sample,
    task,
)
from tests.rule_versions import draft, in_review

# The inbound HTTP connection the run posts to, and the token its catalog entry names.
INGEST_CONNECTION = "partner-referrals"
SOURCE_TOKEN_ENV = "SWITCHBOARD_PARTNER_REFERRALS_TOKEN"
SOURCE_TOKEN = "conformance-run-source-token-not-a-secret"
ROUTED = ("fhir-converter/ADT-A01-01.hl7", "fhir-converter/ADT-A04-01.hl7",
          "fhir-converter/ADT-A03-01.hl7")


def seed(url: str) -> dict[str, str]:
    """Migrate, publish the shipped configuration, add one user per role and leave what
    a day's work leaves; the users' API tokens by name."""
    engine = open_engine(url)
    try:
        upgrade(engine)
        bootstrap(engine, ROOT)
        users = UserStore(engine)
        tokens = {name: users.add(name, role, "conformance run")
                  for name, role in PEOPLE.items()}
        users.close()
        journal = Journal(engine)
        try:
            for name in ROUTED:
                Ingestor(journal).ingest(Received(sample(name), "ehr-adt-feed"))
        finally:
            journal.close()
        Pipeline(engine).run_once()
        held_review(engine)
        referral_task(engine)
        journal_id, _ = entry(engine, status="failed")
        exception_item(engine, journal_id)
        dead = delivery(engine, journal_id)
        exception_item(engine, journal_id, dead)
        exception_item(engine, journal_id, dead, status="assigned", assignee="olive")
        task(engine, journal_id, mode="notify", queue="nurse-review", kind="work")
        draft(engine)
        in_review(engine)
        return tokens
    finally:
        engine.dispose()


@contextmanager
def live_web(url: str) -> Iterator[str]:
    """The web process ``switchboard serve`` starts (the API, ingest, health), on a free
    port until the block ends; its base URL."""
    # One line per request on stderr would drown the run's own report.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    previous = os.environ.get(SOURCE_TOKEN_ENV)
    os.environ[SOURCE_TOKEN_ENV] = SOURCE_TOKEN
    server = start_web(Settings(url, ROOT), free_port(), None)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        app: Any = server.app  # type: ignore[attr-defined]
        runner = app.extensions.get("switchboard.previews")
        if runner is not None:
            runner.stop()
        app.extensions["switchboard"].close()
        if previous is None:
            os.environ.pop(SOURCE_TOKEN_ENV, None)
        else:
            os.environ[SOURCE_TOKEN_ENV] = previous


@dataclass
class Outcome:
    """One schemathesis run: its exit code, operations tested, requests made and the
    failures it reported (each a line of its text)."""

    who: str
    code: int
    operations: int = 0
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    output: str = ""


PHASES = ("examples", "coverage", "fuzzing", "stateful")


def run_schemathesis(base: str, who: str, token: str | None, folder: Path,
                     max_examples: int | None, seed_value: int = 1,
                     phases: tuple[str, ...] = PHASES,
                     extra: tuple[str, ...] = ()) -> Outcome:
    """schemathesis with every check and positive and negative data, in ``phases``
    (by default all: examples, coverage, fuzzing, stateful links) as ``who``: with
    ``token`` as the bearer, or with no credentials at all when it is None;
    ``max_examples`` None leaves schemathesis's own number."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "schemathesis.toml"
    config.write_text(_config(token))
    events = folder / "events.ndjson"
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config),
               "run", f"{base}/api/openapi.json", "--checks", "all", "--mode", "all",
               "--phases", ",".join(phases), "--seed", str(seed_value),
               "--workers", "1", "--no-color", "--report", "ndjson",
               "--report-ndjson-path", str(events), "--generation-database", "none",
               *(("--max-examples", str(max_examples)) if max_examples else ()), *extra]
    done = subprocess.run(command, capture_output=True, text=True, cwd=folder, check=False,
                          env={**os.environ, "NO_COLOR": "1",
                               "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
                               "PYTHONPATH": str(ROOT)})
    outcome = Outcome(who, done.returncode, output=done.stdout + done.stderr)
    _count(outcome, events)
    return outcome


def _config(token: str | None) -> str:
    lines = []
    if token is not None:
        lines += ["[auth.openapi.bearer]", f'bearer = "{token}"',
                  "[auth.openapi.sourceToken]", f'bearer = "{SOURCE_TOKEN}"']
    # Ingest posts to a connection the catalog has. Which media type it takes is the
    # catalog's to say, and whether an HL7 v2 message parses the parser's, which the
    # document cannot: the 415 and the 400 (the message journaled as rejected, with its
    # id) it documents are answers to schema-valid data too.
    lines += ["[[operations]]", 'include-path = "/ingest/{connection_id}"',
              f'parameters = {{ connection_id = "{INGEST_CONNECTION}" }}',
              "[operations.checks.positive_data_acceptance]",
              'expected-statuses = ["2xx", "400", "401", "403", "404", "409", "415", "429"]']
    return "\n".join(lines) + "\n"


def _count(outcome: Outcome, events: Path) -> None:
    """Requests, operations and failed checks from schemathesis's ndjson events."""
    if not events.exists():
        return
    operations: set[str] = set()
    with events.open() as lines:
        for line in lines:
            finished = json.loads(line).get("ScenarioFinished")
            if finished is None:
                continue
            recorder = finished["recorder"]
            interactions = recorder.get("interactions") or {}
            outcome.requests += len(interactions)
            if interactions:
                operations.add(recorder["label"])
            for results in (recorder.get("checks") or {}).values():
                for result in results:
                    if result["status"] == "failure":
                        failure = result.get("failure_info", {}).get("failure", {})
                        outcome.failures.append(
                            f"{failure.get('operation') or recorder['label']}: "
                            f"{failure.get('code')} {failure.get('title')}: "
                            f"{(failure.get('message') or '').splitlines()[0:1]}")
    outcome.operations = len(operations)
