"""Rollback end to end, with ``switchboard serve`` as a process: a reviewed version that
stops routing ADT updates to the sink is published through the REST API and picked up
without a restart; after a rollback to version 1, a message sent once the engine says
it runs the restored version is routed by the older rules again."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from engine.security.users import UserStore
from engine.store.database import open_engine
from engine.store.models import Delivery, JournalEntry
from tests.delivery_config import SINK, delivery_config, update
from tests.ports import free_port
from tests.recording_sink import RecordingSink
from tests.serve_process import ServeProcess, api_call
from tests.waiting import wait_until

VERSIONS = "/api/rule-sets/versions"


def case(expect_rows: list[str]) -> dict[str, Any]:
    inline = update("CASE-1", "MRN-CASE").decode().replace("\r", "\n")
    return {"id": "adt-updates", "description": "Where an ADT update goes.", "cases": [
        {"id": "adt-update", "message": {"inline": inline},
         "expect": {"rows": expect_rows, "destinations": [SINK] if expect_rows else []}}]}


def send(mllp: int, control_id: str) -> None:
    with BlockingMllpClient("127.0.0.1", mllp, timeout=30) as client:
        assert parse(client.send(update(control_id, f"MRN-{control_id}"))).get("MSA-1") == "AA"


def routed(engine, control_id: str) -> tuple[int | None, list[str]]:
    """(the rule-set version that routed the message, its destinations)."""
    def decision() -> tuple[int | None, list[str]] | None:
        with Session(engine) as session:
            entry = session.scalars(select(JournalEntry).where(
                JournalEntry.control_id == control_id)).first()
            if entry is None or entry.rule_set_version is None:
                return None
            destinations = session.scalars(select(Delivery.destination).where(
                Delivery.journal_id == entry.id)).all()
            return entry.rule_set_version, list(destinations)

    return wait_until(decision, what=f"{control_id} to be routed")


def running_version(port: int) -> int | None:
    """The rule-set version every part of the engine runs, as /readyz says (None while
    a publish is still reaching some of them)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer:
            return json.loads(answer.read())["rule_set_version"]
    except urllib.error.HTTPError as not_ready:  # 503 says the version too
        with not_ready:  # closed now: a leaked socket fails whichever test collects it
            return json.loads(not_ready.read())["rule_set_version"]


def wait_for_version(port: int, version: int) -> None:
    wait_until(lambda: running_version(port) == version,
               what=f"the engine to run rule-set version {version}", every=0.1)


def test_after_a_rollback_the_engine_routes_by_the_older_rules(tmp_path):
    sink = RecordingSink()
    sink.start()
    mllp = free_port()
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    config = delivery_config(tmp_path / "config", sink.url, mllp_port=mllp)
    tests = config / "rules" / "tests" / "adt-updates.yaml"
    tests.parent.mkdir(parents=True)
    tests.write_text(yaml.safe_dump(case(["all-to-test-sink"]), sort_keys=False))
    serve = ServeProcess(config, url, tmp_path / "serve.log")
    serve.start()
    store = open_engine(url)
    try:
        users = UserStore(store)
        anna, abe = users.add("anna", "analyst", "test"), users.add("abe", "approver", "test")
        port = serve.web_port
        send(mllp, "BEFORE")
        assert routed(store, "BEFORE") == (1, [SINK])

        # Version 2: only results go to the sink, so ADT updates go nowhere.
        v2 = api_call(port, anna, VERSIONS, {"summary": "Only results reach the test sink"})
        version = v2["version"]
        content = api_call(port, anna, f"{VERSIONS}/{version}/content")
        routes = next(d for d in content["documents"] if d["kind"] == "routes")
        routes["data"]["rows"][0]["match"] = {"type": "ORU"}
        api_call(port, anna, f"{VERSIONS}/{version}/documents", routes, method="PUT")
        api_call(port, anna, f"{VERSIONS}/{version}/documents",
             {"path": "rules/tests/adt-updates.yaml", "kind": "tests", "data": case([])},
             method="PUT")
        api_call(port, anna, f"{VERSIONS}/{version}/submit", {})
        asked = api_call(port, anna, f"{VERSIONS}/{version}/previews", {"limit": 100})
        preview = wait_until(
            lambda: (found := api_call(port, anna, f"/api/rule-sets/previews/{asked['id']}"))
            ["status"] not in ("queued", "running") and found,
            what="the impact preview to finish", every=0.1)
        assert preview["status"] == "done", preview
        api_call(port, abe, f"{VERSIONS}/{version}/approve", {})
        api_call(port, abe, f"{VERSIONS}/{version}/publish", {})
        wait_for_version(port, version)
        send(mllp, "DURING")
        assert routed(store, "DURING") == (version, [])

        rollback = api_call(port, abe, "/api/rule-sets/rollback",
                        {"version": 1, "reason": "the ADT feed must reach the sink"})
        assert rollback["restores_version"] == 1
        wait_for_version(port, rollback["version"])
        send(mllp, "AFTER")
        assert routed(store, "AFTER") == (rollback["version"], [SINK])
        wait_until(lambda: len(sink.received) >= 2, what="both messages at the sink")
        assert sorted(r.key for r in sink.received) == sorted(
            d for d in _keys(store))
    finally:
        serve.stop()
        sink.stop()
        store.dispose()


def _keys(engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(Delivery.idempotency_key)))
