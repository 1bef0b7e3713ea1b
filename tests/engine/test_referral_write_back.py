"""Referral intake end to end, with ``switchboard serve`` as a process and the shipped
configuration: a partner's referral posted over HTTP makes a triage task; the access
center completes it over REST with a state; the EHR (a real HTTP server on 127.0.0.1)
receives the referral's final state as a FHIR R4 Task naming the original referral by
its identifiers, and nothing more about the patient than their identifier."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.task import Task
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.security.users import UserStore
from engine.store.database import open_engine
from engine.store.models import JournalEntry
from tests.delivery_config import example_config
from tests.ports import free_port
from tests.recording_sink import RecordingSink
from tests.samples import read
from tests.serve_process import ServeProcess, api_call
from tests.waiting import wait_until

PARTNER_TOKEN = "partner-practice-test-token"
EHR_AUTHORIZATION = "Bearer ehr-test-token"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"


def referral_config(folder: Path, ehr_base: str, analytics_url: str) -> Path:
    """The shipped configuration with the EHR's referral status endpoint and the
    analytics feed on 127.0.0.1 (the lab is down, as nobody listens on its port)."""
    example_config(folder, analytics_url, free_port())
    path = folder / "catalog" / "connections" / "ehr-referral-status.yaml"
    entry = yaml.safe_load(path.read_text())
    entry["endpoint"]["url"] = ehr_base
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    return folder


def post_referral(port: int, raw: bytes) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/ingest/partner-referrals", data=raw, method="POST",
        headers={"Authorization": f"Bearer {PARTNER_TOKEN}",
                 "Content-Type": "application/hl7-v2"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        message_id: str = json.loads(response.read())["message_id"]
        return message_id


def test_a_completed_referral_writes_its_state_back_to_the_ehr(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_PARTNER_REFERRALS_TOKEN", PARTNER_TOKEN)
    monkeypatch.setenv("SWITCHBOARD_EHR_FHIR_TOKEN", EHR_AUTHORIZATION)
    ehr, analytics = RecordingSink(), RecordingSink()
    ehr.start()
    analytics.start()
    config = referral_config(tmp_path / "config", f"http://127.0.0.1:{ehr.port}/fhir/R4",
                             analytics.url)
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    serve = ServeProcess(config, url, tmp_path / "serve.log", "--mllp-port", str(free_port()))
    serve.start()
    store = open_engine(url)
    try:
        coordinator = UserStore(store).add("grace", "clinician", "test")

        def call(path: str, body: Any = None) -> Any:
            return api_call(serve.web_port, coordinator, path, body)

        referral_id = post_referral(serve.web_port, read("fhir-converter/REF-I12-01.hl7"))
        (task,) = wait_until(lambda: call("/api/tasks?queue=referral-intake")["items"],
                             what="the referral's triage task")
        assert (task["message_id"], task["kind"]) == (referral_id, "referral-triage")
        complete = f"/api/tasks/{task['id']}/complete"
        with pytest.raises(urllib.error.HTTPError) as refused:
            call(complete, {"state": "booked"})
        refused.value.close()  # a leaked socket fails whichever test collects it
        # A state the route row does not name is a conflict with what is stored (409).
        assert refused.value.code == 409
        call(complete, {"state": "scheduled", "reason": "seen by Dr McWilliams on 3 Dec"})

        (received,) = wait_until(lambda: list(ehr.received), what="the state at the EHR")
        with Session(store) as session:
            event = session.scalars(select(JournalEntry).where(
                JournalEntry.format == "task-outcome")).one()
        assert received.key == f"{event.message_id}:ehr-referral-status"
        assert (received.path, received.media_type, received.authorization) == (
            "/fhir/R4", "application/fhir+json", EHR_AUTHORIZATION)
        bundle = received.body
        assert Bundle.model_validate(bundle).type == "transaction"
        (entry,) = bundle["entry"]
        resource = entry["resource"]
        Task.model_validate(resource)
        assert (resource["status"], resource["businessStatus"]) == (
            "in-progress", {"text": "scheduled"})
        assert [(ref["type"], ref["identifier"]["type"]["coding"][0]["code"],
                 ref["identifier"]["value"]) for ref in resource["basedOn"]] == [
            ("ServiceRequest", "PLAC", "226839"), ("ServiceRequest", "FILL", "11001")]
        assert resource["for"]["identifier"]["value"] == "PATID1234"
        # Minimum necessary: no name, birth date, address or the coordinator's words.
        text = json.dumps(bundle)
        for value in ("EVERYMAN", "1961", "MAINSTREET", "McWilliams", "grace"):
            assert value not in text

        # The analytics feed counts outcomes, de-identified.
        outcome = wait_until(lambda: next(
            (r.body for r in analytics.received if r.body["message"]["type"] == "TASK"),
            None), what="the outcome in the analytics feed")
        assert outcome["task_outcome"] == {"queue": "referral-intake",
                                           "kind": "referral-triage",
                                           "outcome": "completed", "state": "scheduled"}
        assert "patient" not in outcome or "identifiers" not in outcome["patient"]
    finally:
        serve.stop()
        ehr.stop()
        analytics.stop()
        store.dispose()
