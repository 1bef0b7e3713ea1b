"""Over real MLLP: with the database stopped, senders get AE (never AA), the listener
keeps running, and when the database returns the same connection is answered AA.
Uses a private cluster of its own, stopped and started here."""

from __future__ import annotations

import asyncio

from engine.connectors.mllp.client import MllpClient
from engine.connectors.mllp.listener import MllpListener, MllpListenerConfig
from engine.hl7v2 import parse
from engine.ingest import Ingestor
from engine.journal import Journal
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from tests.postgres_cluster import PrivateCluster

ADT = ("MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500-0500||ADT^A01^ADT_A01|{id}|P|"
       "2.5.1\rPID|1||MRN1^^^RIVERSIDE^MR||DOE^JANE\r")


def test_listener_answers_ae_while_the_database_is_down():
    cluster = PrivateCluster()
    cluster.start()
    engine = open_engine(cluster.url, pool_pre_ping=True)
    journal = Journal(engine)
    try:
        upgrade(engine)
        codes = asyncio.run(_conversation(Ingestor(journal), cluster))
        assert codes == ["AA", "AE", "AE", "AA"]
    finally:
        journal.close()
        engine.dispose()
        cluster.destroy()


async def _conversation(ingestor: Ingestor, cluster: PrivateCluster) -> list[str]:
    listener = MllpListener(ingestor, "ehr-adt-feed",
                            MllpListenerConfig.from_mapping({"port": 0}))
    await listener.start()
    codes = []
    try:
        async with MllpClient("127.0.0.1", listener.port, timeout=60) as client:
            codes.append(await _send(client, "A"))
            await asyncio.to_thread(cluster.stop)
            codes.append(await _send(client, "B"))
            codes.append(await _send(client, "B"))
            await asyncio.to_thread(cluster.start)
            codes.append(await _send(client, "B"))
    finally:
        await listener.stop(5)
    return codes


async def _send(client: MllpClient, control_id: str) -> str:
    return parse(await client.send(ADT.format(id=control_id).encode())).get("MSA-1") or ""
