"""SQLite's writers' lock has a deadline: a journal commit that gets no turn in time
fails as the store being unavailable, so an MLLP sender is answered AE instead of
waiting for ever, and the next commit after the holder lets go succeeds (issue 13,
defect 7)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from engine.connectors.mllp.client import MllpClient
from engine.connectors.mllp.listener import MllpListener, MllpListenerConfig
from engine.hl7v2 import parse
from engine.ingest import Ingestor
from engine.journal import Journal
from engine.store import database
from engine.store.database import open_engine, reader
from engine.store.migrate import upgrade
from engine.store.models import JournalEntry
from tests.writer_lock import ANSWER_LIMIT, writer_lock_held

ADT = ("MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500-0500||ADT^A01^ADT_A01|{id}|P|"
       "2.5.1\rPID|1||MRN1^^^RIVERSIDE^MR||DOE^JANE\r")


def test_a_sender_gets_ae_while_another_writer_keeps_the_lock_then_aa(tmp_path, monkeypatch):
    monkeypatch.setattr(database, "WRITER_LOCK_TIMEOUT", 0.5, raising=False)
    url = f"sqlite:///{tmp_path / 'sb.db'}"
    engine = open_engine(url)
    journal = Journal(engine)
    try:
        upgrade(engine)
        codes = asyncio.run(_conversation(Ingestor(journal), url))
        assert codes == ["AA", "AE", "AA"]
        with reader(engine).connect() as connection:  # nothing kept from the AE
            assert connection.scalar(select(func.count()).select_from(JournalEntry)) == 2
    finally:
        journal.close()
        engine.dispose()


async def _conversation(ingestor: Ingestor, url: str) -> list[str]:
    listener = MllpListener(ingestor, "ehr-adt-feed",
                            MllpListenerConfig.from_mapping({"port": 0}))
    await listener.start()
    codes = []
    try:
        async with MllpClient("127.0.0.1", listener.port, timeout=ANSWER_LIMIT) as client:
            codes.append(await _send(client, "A"))
            with writer_lock_held(url):
                codes.append(await _send(client, "B"))
            codes.append(await _send(client, "B"))
    finally:
        await listener.stop(5)
    return codes


async def _send(client: MllpClient, control_id: str) -> str:
    return parse(await client.send(ADT.format(id=control_id).encode())).get("MSA-1") or ""
