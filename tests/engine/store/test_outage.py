"""With the database down, nothing is acknowledged positively and nothing crashes; when
it returns, ingest carries on. Uses a private cluster of its own, stopped and started
here: never a shared server."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.hl7v2 import parse
from engine.ingest import Ingestor
from engine.journal import Journal, Kind, Received
from engine.store.database import open_engine
from engine.store.migrate import upgrade
from engine.store.models import JournalEntry
from tests.postgres_cluster import PrivateCluster

ADT = (
    "MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500-0500||ADT^A01^ADT_A01|{id}|P|2.5.1\r"
    "PID|1||MRN1^^^RIVERSIDE^MR||DOE^JANE\r"
)


def test_database_outage_gives_ae_then_recovers():
    cluster = PrivateCluster()
    cluster.start()
    engine = open_engine(cluster.url, pool_pre_ping=True)
    try:
        upgrade(engine)
        sb = Ingestor(Journal(engine))
        before = sb.ingest(Received(ADT.format(id="A").encode(), "ehr-adt-feed"))
        assert parse(before.ack).get("MSA-1") == "AA"

        cluster.stop()
        during = sb.ingest(Received(ADT.format(id="B").encode(), "ehr-adt-feed"))
        assert during.journaled is None
        ack = parse(during.ack)
        assert ack.get("MSA-1") == "AE" and ack.get("MSA-2") == "B"
        assert "cannot store the message right now" in ack.get("ERR-8")

        cluster.start()
        after = sb.ingest(Received(ADT.format(id="B").encode(), "ehr-adt-feed"))
        assert after.journaled.kind == Kind.NEW
        assert parse(after.ack).get("MSA-1") == "AA"
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(JournalEntry)) == 2
    finally:
        engine.dispose()
        cluster.destroy()
