"""Enhanced mode end to end on real sockets: the accept ACK at journal commit, then the
application ACK on the same connection once the pipeline has routed the message, as
MSH-16 asks (AL always, SU on success, ER only on failure, NE never)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import update

from engine.connectors.mllp.application_ack import ApplicationAcks
from engine.ingest import Ingestor
from engine.journal import Journal
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.store.models import JournalEntry
from tests.engine.connectors.conftest import Peer, adt, listening, run
from tests.waiting import wait_until_async

ROOT = Path(__file__).resolve().parents[3]


def test_application_ack_follows_routing_as_msh_16_asks(sqlite_engine):
    bootstrap(sqlite_engine, ROOT)
    ingestor = Ingestor(Journal(sqlite_engine))
    acks = ApplicationAcks(sqlite_engine, interval=0.05)

    async def scenario():
        acks.start()
        async with listening(ingestor, application_acks=acks) as listener:
            peer = await Peer.open(listener.port)
            answers = {}
            for control_id, modes in (("ALWAYS", "|||AL|AL"), ("ONSUCCESS", "|||AL|SU"),
                                      ("ONERROR", "|||AL|ER"), ("NEVER", "|||AL|NE")):
                await peer.send(adt(control_id, modes))
                accept = await peer.ack()
                answers[control_id] = [(accept.get("MSA-1"), accept.get("MSA-2"))]
            assert acks.pending == 3  # NE asks for nothing, so nothing waits
            routed = await asyncio.to_thread(Pipeline(sqlite_engine).run_once)
            assert routed == 4
            # Every waiting message is decided in the round that answers: once none
            # waits, a third application ACK would have been written before this.
            await wait_until_async(lambda: acks.pending == 0, what="the outcomes")
            await peer.send(adt("LATER"))
            while (frame := await peer.ack(timeout=10)).get("MSA-2") != "LATER":
                answers[frame.get("MSA-2")].append((frame.get("MSA-1"), frame.get("MSH-9.1")))
            await peer.close()
            await acks.stop()
            return answers, acks.pending

    answers, pending = run(scenario())
    assert answers == {
        "ALWAYS": [("CA", "ALWAYS"), ("AA", "ACK")],
        "ONSUCCESS": [("CA", "ONSUCCESS"), ("AA", "ACK")],
        "ONERROR": [("CA", "ONERROR")],
        "NEVER": [("CA", "NEVER")],
    }
    assert pending == 0


def test_a_failed_message_gets_ae_and_a_closed_connection_nothing(sqlite_engine):
    bootstrap(sqlite_engine, ROOT)
    ingestor = Ingestor(Journal(sqlite_engine))
    acks = ApplicationAcks(sqlite_engine, interval=3600)  # rounds driven by the test

    async def scenario():
        async with listening(ingestor, application_acks=acks) as listener:
            peer = await Peer.open(listener.port)
            await peer.send(adt("BROKEN", "|||AL|ER"))
            assert (await peer.ack()).get("MSA-1") == "CA"
            gone = await Peer.open(listener.port)
            await gone.send(adt("GONE", "|||AL|AL"))
            assert (await gone.ack()).get("MSA-1") == "CA"
            await gone.close()
            # The listener has seen the sender go, so its ACK is not written to it.
            await wait_until_async(lambda: listener.counters.connections_open == 1,
                                   what="the closed connection to end")
            # What the pipeline records when a stage fails for this message.
            with sqlite_engine.begin() as connection:
                connection.execute(update(JournalEntry).values(status="failed"))
            await acks.send_ready()
            application = await peer.ack(timeout=10)
            await peer.close()
            return application, acks.pending

    application, pending = run(scenario())
    assert (application.get("MSA-1"), application.get("MSA-2")) == ("AE", "BROKEN")
    assert "exception queue" in (application.get("ERR-8") or application.get("ERR-3") or "")
    assert pending == 0
