"""The hostile-input corpus (tests/hostile/, issue 13) through MLLP and HTTP ingest, on
SQLite and on PostgreSQL at once. Each input is followed by an ordinary message for
another patient on the same transport. For every input, both stores give the same
answer (ACK code and ERR location, or HTTP status and reason), journal status,
exception classes and deliveries, the ones tests/hostile/expected.json states; and
every ordinary message is delivered: no input stops the line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from engine.connectors.mllp.client import BlockingMllpClient, MllpConnectionError
from engine.hl7v2 import parse
from engine.store.database import open_engine
from engine.store.models import Delivery, ExceptionItem, JournalEntry
from tests.delivery_config import HTTP_FEED, HTTP_FEED_TOKEN_ENV, SINK, delivery_config, update
from tests.engine.store.conftest import _fresh_database
from tests.in_process_serve import Serving, serving
from tests.recording_sink import RecordingSink
from tests.waiting import wait_until

HOSTILE = Path(__file__).resolve().parents[1] / "hostile"
EXPECTED: dict[str, dict[str, Any]] = json.loads((HOSTILE / "expected.json").read_text())
NAMES = sorted(EXPECTED)
TOKEN = "hostile-input-feed-token-for-tests"
STORES = ("sqlite", "postgresql")
TRANSPORTS = ("mllp", "http")


@dataclass(frozen=True)
class Outcome:
    """What became of one input: the sender's answer, then the store's record."""

    answer: tuple[str, str]  # (MSA-1, ERR-2) over MLLP; (HTTP status, reason) over HTTP
    status: str
    exceptions: tuple[str, ...]
    deliveries: tuple[tuple[str, str], ...]


class Feed:
    """One store's serve, fed every input and an ordinary message after each."""

    def __init__(self, serve: Serving, store: Engine, sink: RecordingSink) -> None:
        self.serve = serve
        self.store = store
        self.sink = sink
        self.journal_ids: dict[tuple[str, str], int] = {}
        self.answers: dict[tuple[str, str], tuple[str, str]] = {}
        self.ordinary: list[str] = []

    def run(self) -> None:
        client = BlockingMllpClient("127.0.0.1", self.serve.mllp, timeout=30)
        try:
            for number, name in enumerate(NAMES):
                raw = (HOSTILE / "inputs" / f"{name}.hl7").read_bytes()
                client = self._mllp(client, name, raw)
                self._ordinary_mllp(client, f"ORD-M-{number}", f"MRN-ORD-M{number}")
                self._http(name, raw)
                self._ordinary_http(f"ORD-H-{number}", f"MRN-ORD-H{number}")
        finally:
            client.close()

    def _mllp(self, client: BlockingMllpClient, name: str,
              raw: bytes) -> BlockingMllpClient:
        try:
            ack = parse(client.send(raw))
            answer = (ack.get("MSA-1") or "", ack.get_raw("ERR-2") or "")
        except MllpConnectionError:  # closed on us: a new connection for what follows
            client.close()
            client = BlockingMllpClient("127.0.0.1", self.serve.mllp, timeout=30)
            answer = ("closed", "")
        self._note("mllp", name, answer)
        return client

    def _http(self, name: str, raw: bytes) -> None:
        status, body = self._post(raw)
        self._note("http", name, (str(status), str(body.get("reason", ""))))

    def _note(self, transport: str, name: str, answer: tuple[str, str]) -> None:
        self.answers[transport, name] = answer
        with self.store.connect() as connection:
            self.journal_ids[transport, name] = int(
                connection.scalar(select(func.max(JournalEntry.id))) or 0)

    def _ordinary_mllp(self, client: BlockingMllpClient, control_id: str,
                       patient: str) -> None:
        assert parse(client.send(update(control_id, patient))).get("MSA-1") == "AA"
        self.ordinary.append(control_id)

    def _ordinary_http(self, control_id: str, patient: str) -> None:
        assert self._post(update(control_id, patient))[0] == 202
        self.ordinary.append(control_id)

    def _post(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        return self.serve.ingest(HTTP_FEED, TOKEN, raw, "application/hl7-v2")

    def settled(self) -> bool:
        """Every ordinary message delivered, and nothing left moving in the store."""
        delivered = {r.body["message"]["control_id"] for r in self.sink.received}
        if not set(self.ordinary) <= delivered:
            return False
        with Session(self.store) as session:
            moving = session.scalar(select(func.count()).select_from(JournalEntry).where(
                JournalEntry.status.in_(("received", "routing"))))
            sending = session.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.status.in_(("pending", "in_flight", "retrying"))))
        return not moving and not sending

    def outcomes(self) -> dict[tuple[str, str], Outcome]:
        found = {}
        with Session(self.store) as session:
            for key, journal_id in self.journal_ids.items():
                entry = session.get(JournalEntry, journal_id)
                assert entry is not None
                exceptions = session.scalars(select(ExceptionItem.error_class).where(
                    ExceptionItem.journal_id == journal_id)).all()
                deliveries = session.execute(select(Delivery.destination, Delivery.status)
                                             .where(Delivery.journal_id == journal_id)).all()
                found[key] = Outcome(self.answers[key], entry.status,
                                     tuple(sorted(exceptions)),
                                     tuple(sorted((d, s) for d, s in deliveries)))
        return found


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, postgres_server) -> Iterator[dict[str, dict]]:
    """Every input through both transports on both stores, fed at once."""
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'switchboard.db'}",
            "postgresql": _fresh_database(postgres_server)}
    previous = os.environ.get(HTTP_FEED_TOKEN_ENV)
    os.environ[HTTP_FEED_TOKEN_ENV] = TOKEN
    sinks = {store: RecordingSink() for store in STORES}
    feeds: dict[str, Feed] = {}
    contexts = []
    try:
        for store in STORES:
            sinks[store].start()
            config = delivery_config(tmp_path_factory.mktemp(f"{store}-config"),
                                     sinks[store].url, http_feed=True)
            context = serving(config, urls[store], delivery_workers=2)
            contexts.append(context)
            feeds[store] = Feed(context.__enter__(), open_engine(urls[store]), sinks[store])
        with ThreadPoolExecutor(len(STORES)) as pool:
            list(pool.map(lambda feed: feed.run(), feeds.values()))
        for store, feed in feeds.items():
            wait_until(feed.settled, 180, f"{store}: every ordinary message delivered after "
                       "its hostile one, and the store settled")
        yield {store: feed.outcomes() for store, feed in feeds.items()}
    finally:
        for context in reversed(contexts):
            context.__exit__(None, None, None)
        for feed in feeds.values():
            feed.store.dispose()
        for sink in sinks.values():
            sink.stop()
        if previous is None:
            os.environ.pop(HTTP_FEED_TOKEN_ENV, None)
        else:
            os.environ[HTTP_FEED_TOKEN_ENV] = previous


@pytest.mark.parametrize("name", NAMES)
def test_hostile_input_fails_alone_and_alike_on_both_stores(outcomes, name):
    expected = EXPECTED[name]
    deliveries = ((SINK, "delivered"),) if expected["delivered"] else ()
    for transport in TRANSPORTS:
        sqlite, postgresql = (outcomes[store][transport, name] for store in STORES)
        assert sqlite == postgresql, f"{transport}: the stores disagree"
        http_status = {"AA": "202", "AR": "400", "CR": "400"}[expected["ack"]]
        answer = ((expected["ack"], expected["err"]) if transport == "mllp"
                  else (http_status, sqlite.answer[1]))
        assert sqlite.answer == answer, transport
        assert (sqlite.status, list(sqlite.exceptions), sqlite.deliveries) == (
            expected["status"], expected["exceptions"], deliveries), transport
        if transport == "http" and expected["err"]:  # the reason names the field
            assert _hl7_path(expected["err"]) in sqlite.answer[1]


def _hl7_path(location: str) -> str:
    """An ERR-2 location (``MSH^1^9^^1``) as HL7 people write it (``MSH-9.1``)."""
    parts = location.split("^") + [""] * 5
    return f"{parts[0]}-{parts[2]}" + (f".{parts[4]}" if parts[4] else "")
