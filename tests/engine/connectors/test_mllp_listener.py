"""The MLLP listener against real sockets on 127.0.0.1 and a real journal: ACK after
commit, concurrency, rejects, oversize, framing noise, enhanced mode, the allow-list,
idle and abandoned connections, graceful stop, and its registration and schema."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import sqlite3
import sys

import pytest
from jsonschema import Draft202012Validator

from engine import metrics
from engine.connectors import ConnectorError, source_factory, source_names, source_schema
from engine.connectors.mllp import SCHEMA, MllpListener, MllpListenerConfig
from engine.hl7v2.mllp import encode_frame
from tests.engine.connectors.conftest import SOURCE, Peer, adt, journal_rows, listening, run
from tests.waiting import wait_until_async

# --- acknowledgement after commit, on SQLite and PostgreSQL --------------------------


def test_aa_arrives_only_after_the_journal_commit(engine, ingestor):
    async def scenario():
        async with listening(ingestor) as listener:
            peer = await Peer.open(listener.port)
            await peer.send(adt("CTL1"))
            ack = await peer.ack()
            rows_when_acked = journal_rows(engine)
            await peer.close()
            return ack, rows_when_acked

    ack, rows = run(scenario())
    assert (ack.get("MSA-1"), ack.get("MSA-2")) == ("AA", "CTL1")
    assert [(row.status, row.control_id, row.raw, row.peer) for row in rows] == [
        ("received", "CTL1", adt("CTL1"), "127.0.0.1")
    ]


def test_concurrent_connections_each_get_their_own_acks_in_order(engine, ingestor):
    connections, per_connection = 20, 25

    async def sender(port: int, number: int) -> tuple[list[str], list[str]]:
        peer = await Peer.open(port)
        sent = [f"C{number:02d}M{index:02d}" for index in range(per_connection)]
        # All frames in one go: the ACKs must still come back one per frame, in order.
        await peer.send_raw(b"".join(encode_frame(adt(control_id)) for control_id in sent))
        echoed = [(await peer.ack()).get("MSA-2") or "" for _ in sent]
        await peer.close()
        return sent, echoed

    async def scenario():
        async with listening(ingestor) as listener:
            results = await asyncio.gather(
                *(sender(listener.port, number) for number in range(connections)))
            return results, listener.counters

    results, counters = run(scenario())
    for sent, echoed in results:
        assert echoed == sent
    rows = journal_rows(engine)
    assert len(rows) == connections * per_connection
    assert {row.status for row in rows} == {"received"}
    assert counters.received == counters.acked == connections * per_connection
    assert (counters.connections_total, counters.connections_open) == (connections, 0)


# --- bad input costs at most its own connection ---------------------------------------


def test_malformed_frame_gets_ar_with_the_reason_and_the_connection_stays_usable(
    sqlite_ingestor,
):
    async def scenario():
        async with listening(sqlite_ingestor) as listener:
            peer = await Peer.open(listener.port)
            await peer.send(b"PID|1||123^^^RIVERSIDE^MR\r")
            rejected = await peer.ack()
            await peer.send(adt("CTL2"))
            accepted = await peer.ack()
            await peer.close()
            return rejected, accepted, listener.counters

    rejected, accepted, counters = run(scenario())
    assert rejected.get("MSA-1") == "AR"
    assert rejected.get("ERR-8") == "an HL7 v2 message must start with an MSH segment"
    assert (accepted.get("MSA-1"), accepted.get("MSA-2")) == ("AA", "CTL2")
    assert (counters.received, counters.rejected, counters.acked) == (2, 1, 2)


def test_oversize_frame_is_rejected_and_only_its_connection_closed(sqlite_engine,
                                                                   sqlite_ingestor):
    big = adt("BIG1") + b"OBX|1|TX|||" + b"x" * 1_000_000 + b"\r"

    async def write_ignoring_reset(peer: Peer, data: bytes) -> None:
        # The listener may close while the rest of the frame is still going out.
        with contextlib.suppress(ConnectionError):
            await peer.send_raw(data)

    async def scenario():
        async with listening(sqlite_ingestor, max_frame_bytes=64 * 1024) as listener:
            bystander = await Peer.open(listener.port)
            sender = await Peer.open(listener.port)
            writing = asyncio.create_task(write_ignoring_reset(sender, encode_frame(big)))
            reject = await sender.ack()
            closed = await sender.closed_by_listener()
            await writing
            await sender.close()
            await bystander.send(adt("CTL2"))
            after = await bystander.ack()
            await bystander.close()
            return reject, closed, after, listener.counters

    reject, closed, after, counters = run(scenario())
    assert (reject.get("MSA-1"), reject.get("MSA-2")) == ("AR", "BIG1")
    assert "exceeds the limit of 65536 bytes" in (reject.get("ERR-8") or "")
    assert closed
    assert (after.get("MSA-1"), after.get("MSA-2")) == ("AA", "CTL2")
    oversize = [row for row in journal_rows(sqlite_engine) if row.status == "oversize"]
    assert len(oversize) == 1 and oversize[0].raw is None
    assert oversize[0].size_bytes > 64 * 1024
    assert (counters.oversize, counters.partial_frames) == (1, 0)


def test_garbage_between_frames_is_ignored_and_a_frame_in_1_byte_writes_is_acked(
    sqlite_ingestor,
):
    async def scenario():
        async with listening(sqlite_ingestor) as listener:
            peer = await Peer.open(listener.port)
            await peer.send_raw(b"garbage\r\n" + encode_frame(adt("G1")) + b"\x00junk"
                                + encode_frame(adt("G2")) + b"trailing")
            first, second = await peer.ack(), await peer.ack()
            for byte in encode_frame(adt("S1")):
                await peer.send_raw(bytes([byte]))
            split = await peer.ack()
            await peer.close()
            await wait_until_async(lambda: listener.live_connections == 0)
            return [ack.get("MSA-2") for ack in (first, second, split)], listener.counters

    control_ids, counters = run(scenario())
    assert control_ids == ["G1", "G2", "S1"]
    assert counters.discarded_bytes == len(b"garbage" + b"\x00junk" + b"trailing")


def test_enhanced_mode_ne_is_journaled_without_an_ack(engine, ingestor):
    async def scenario():
        async with listening(ingestor) as listener:
            peer = await Peer.open(listener.port)
            await peer.send(adt("NE1", modes="|||NE|AL"))
            await peer.send(adt("CTL2"))
            # ACKs come in frame order: if NE1 had been answered, its ACK would be first.
            first_ack = await peer.ack()
            await peer.close()
            return first_ack, listener.counters

    first_ack, counters = run(scenario())
    assert (first_ack.get("MSA-1"), first_ack.get("MSA-2")) == ("AA", "CTL2")
    assert [(row.control_id, row.status) for row in journal_rows(engine)] == [
        ("NE1", "received"), ("CTL2", "received")]
    assert (counters.received, counters.acked) == (2, 1)


# --- who may connect, and for how long ------------------------------------------------


def test_peer_outside_allowed_peers_is_closed_without_reading(sqlite_engine, sqlite_ingestor,
                                                              caplog):
    caplog.set_level(logging.WARNING, logger="engine.connectors.mllp")

    async def scenario():
        async with listening(sqlite_ingestor, allowed_peers=["10.0.0.0/8"]) as listener:
            peer = await Peer.open(listener.port)
            closed = await peer.closed_by_listener()
            await peer.close()
            return closed, listener.counters

    closed, counters = run(scenario())
    assert closed
    assert (counters.peers_refused, counters.connections_total) == (1, 0)
    assert journal_rows(sqlite_engine) == []
    [record] = [r for r in caplog.records if r.name.startswith("engine.connectors.mllp")]
    assert record.levelno == logging.WARNING
    assert (record.peer, record.source_id) == ("127.0.0.1", "ehr-adt-feed")


def test_idle_and_half_open_connections_are_closed_after_idle_timeout(sqlite_ingestor,
                                                                         caplog):
    caplog.set_level(logging.INFO, logger="engine.connectors.mllp")

    async def scenario():
        async with listening(sqlite_ingestor, idle_timeout=0.5) as listener:
            silent = await Peer.open(listener.port)
            half = await Peer.open(listener.port)
            await half.send_raw(encode_frame(adt("HALF"))[:40])
            closed = [await silent.closed_by_listener(), await half.closed_by_listener()]
            await silent.close()
            await half.close()
            await wait_until_async(lambda: listener.live_connections == 0)
            return closed, listener.counters

    closed, counters = run(scenario())
    assert closed == [True, True]
    # Closed by the listener for their silence, not by a peer, a stop or an error.
    assert (counters.idle_closed, counters.partial_frames, counters.received) == (2, 1, 0)
    assert sorted((r.connection, r.reason) for r in caplog.records
                  if r.getMessage() == "MLLP connection closed") == [
        (1, "idle timeout"), (2, "idle timeout")]


def _resident_bytes() -> int:
    """Resident memory of this process; 0 where /proc is missing (the growth check
    then passes trivially, the leak check on the connection set still runs)."""
    if not sys.platform.startswith("linux"):
        return 0
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_ten_thousand_abandoned_connections_leave_nothing_behind(sqlite_ingestor):
    half_frame = encode_frame(adt("ABANDONED"))[:60]

    async def abandon(port: int, number: int) -> None:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"not mllp at all" if number % 2 else half_frame)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def wave(port: int, first: int, count: int) -> None:
        for start in range(first, first + count, 200):
            await asyncio.gather(*(abandon(port, n) for n in range(start, start + 200)))

    async def scenario():
        async with listening(sqlite_ingestor, max_connections=1000) as listener:
            await wave(listener.port, 0, 200)  # warm up: one-time allocations
            await wait_until_async(lambda: listener.live_connections == 0)
            gc.collect()
            before = _resident_bytes()
            await wave(listener.port, 200, 10_000)
            await wait_until_async(lambda: listener.live_connections == 0)
            gc.collect()
            return _resident_bytes() - before, listener.counters

    grown, counters = run(scenario())
    assert counters.connections_total == 10_200
    assert counters.connections_open == 0
    assert counters.partial_frames == 5_100
    assert counters.received == 0
    assert grown < 20 * 1024 * 1024, f"resident memory grew by {grown / 1e6:.1f} MB"


# --- graceful stop --------------------------------------------------------------------


def test_graceful_stop_acks_the_frame_in_flight_then_closes(sqlite_engine, sqlite_ingestor):
    # A second writer holds SQLite's write lock, so the frame's commit is still in
    # flight when stop() is called; releasing the lock lets it finish.
    lock = sqlite3.connect(sqlite_engine.url.database, isolation_level=None)

    async def scenario():
        async with listening(sqlite_ingestor) as listener:
            port = listener.port
            idle = await Peer.open(port)
            busy = await Peer.open(port)
            lock.execute("BEGIN IMMEDIATE")
            await busy.send(adt("INFLIGHT"))
            await wait_until_async(lambda: listener.counters.received == 1)
            stopping = asyncio.create_task(listener.stop(grace=10.0))
            idle_closed = await idle.closed_by_listener()
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", port)
            waited = not stopping.done() and listener.counters.acked == 0
            lock.execute("ROLLBACK")
            ack = await busy.ack()
            busy_closed = await busy.closed_by_listener()
            await stopping
            await idle.close()
            await busy.close()
            return idle_closed, waited, ack, busy_closed

    try:
        idle_closed, waited, ack, busy_closed = run(scenario())
    finally:
        lock.close()
    assert idle_closed and waited and busy_closed
    assert (ack.get("MSA-1"), ack.get("MSA-2")) == ("AA", "INFLIGHT")
    assert [row.control_id for row in journal_rows(sqlite_engine)] == ["INFLIGHT"]


def test_a_frame_half_sent_when_stop_begins_is_still_acked(sqlite_ingestor):
    frame = encode_frame(adt("SPLIT"))

    async def scenario():
        async with listening(sqlite_ingestor) as listener:
            port = listener.port
            peer = await Peer.open(port)
            await peer.send_raw(frame[:50])
            # The listener has read the first half: the connection is mid-frame.
            await wait_until_async(lambda: mid_frame(listener) == 1)
            stopping = asyncio.create_task(listener.stop(grace=10.0))
            await wait_until_async(lambda: stopped_listening(port), what="stop to begin")
            await peer.send_raw(frame[50:])
            ack = await peer.ack()
            await stopping
            closed = await peer.closed_by_listener()
            await peer.close()
            return ack, closed

    ack, closed = run(scenario())
    assert (ack.get("MSA-1"), ack.get("MSA-2"), closed) == ("AA", "SPLIT", True)


# --- registration and config ----------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), [
    ("mlp", "No such connector: mlp. Did you mean mllp?"),
    ("kafka", "No such connector: kafka. Known connectors: file, mllp"),
])
def test_unknown_connector_names_the_closest_one(name, message):
    with pytest.raises(ConnectorError) as raised:
        source_factory(name)
    assert str(raised.value) == message


def test_mllp_is_registered_with_its_schema(sqlite_ingestor):
    assert "mllp" in source_names()
    assert source_schema("mllp") is SCHEMA
    source = source_factory("mllp")(sqlite_ingestor, "lab-feed", {"port": 0})
    assert isinstance(source, MllpListener)

    async def start_and_stop() -> int:
        await source.start()
        port = source.port
        await source.stop(grace=1.0)
        return port

    assert run(start_and_stop()) > 0


def test_every_config_field_is_documented_and_its_example_is_valid():
    Draft202012Validator.check_schema(SCHEMA)
    validator = Draft202012Validator(SCHEMA)
    for name, spec in SCHEMA["properties"].items():
        assert spec.get("description"), name
        assert "default" in spec and spec.get("examples"), name
        validator.validate({name: spec["default"]})
        for example in spec["examples"]:
            validator.validate({name: example})
    examples = {name: spec["examples"][0] for name, spec in SCHEMA["properties"].items()}
    config = MllpListenerConfig.from_mapping(examples)
    assert config.allows("10.20.3.4") and config.allows("192.168.1.15")
    assert not config.allows("192.168.1.16")
    defaults = MllpListenerConfig.from_mapping({})
    assert (defaults.port, defaults.allowed_peers, defaults.allows("203.0.113.9")) == (
        2575, (), True)


@pytest.mark.parametrize(("config", "message"), [
    ({"port": 70000}, "port: 70000 is greater than the maximum of 65535"),
    ({"idle_timeout": 0}, "idle_timeout: 0 is less than or equal to the minimum of 0"),
    ({"prot": 2575}, "Additional properties are not allowed ('prot' was unexpected)"),
    ({"allowed_peers": ["10.0.0.0/33"]},
     "allowed_peers[0]: '10.0.0.0/33' is not an IP address or CIDR network"),
])
def test_invalid_config_says_which_field_and_why(config, message):
    with pytest.raises(ConnectorError) as raised:
        MllpListenerConfig.from_mapping(config)
    assert message in str(raised.value)


def test_a_port_in_use_is_a_connector_error(sqlite_ingestor):
    async def scenario() -> str:
        async with listening(sqlite_ingestor) as listener:
            taken = MllpListenerConfig.from_mapping({"port": listener.port})
            second = MllpListener(sqlite_ingestor, "second", taken)
            with pytest.raises(ConnectorError) as raised:
                await second.start()
            return str(raised.value)

    assert "cannot listen on 127.0.0.1:" in run(scenario())


def mid_frame(listener: MllpListener) -> int:
    """Connections whose listener holds part of a frame. The listener exposes no count
    of these, so this reads its connection table."""
    return sum(not connection.decoder.at_frame_boundary
               for connection in listener._live.values())


def stopped_listening(port: int) -> bool:
    """Whether nothing listens on ``port`` any more, asked without connecting to it:
    with SO_REUSEADDR a bind fails only while a socket listens there."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --- every close counted by its reason on /metrics -------------------------------------


def _closed(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value(
        "switchboard_mllp_closed_total", {"connection": SOURCE, "reason": reason}) or 0.0


def test_each_close_is_counted_on_metrics_by_its_reason(sqlite_ingestor):
    reasons = ("peer_closed", "idle", "oversize", "refused", "internal_error")
    before = {reason: _closed(reason) for reason in reasons}

    async def scenario():
        async with listening(sqlite_ingestor, idle_timeout=0.5, max_frame_bytes=1024,
                             max_connections=3) as listener:
            polite = await Peer.open(listener.port)
            await polite.send(adt("BYE1"))
            await polite.ack()
            await polite.close()
            silent = await Peer.open(listener.port)
            assert await silent.closed_by_listener()
            await silent.close()
            big = await Peer.open(listener.port)
            await big.send(adt("BIG2") + b"OBX|1|TX|||" + b"x" * 2048 + b"\r")
            await big.ack()
            assert await big.closed_by_listener()
            await big.close()
            await wait_until_async(lambda: listener.live_connections == 0)
            held = [await Peer.open(listener.port) for _ in range(3)]
            await wait_until_async(lambda: listener.live_connections == 3)
            refused = await Peer.open(listener.port)
            assert await refused.closed_by_listener()
            for peer in (*held, refused):
                await peer.close()
            await wait_until_async(lambda: listener.live_connections == 0)

    run(scenario())
    counted = {reason: _closed(reason) - before[reason] for reason in reasons}
    # The three held open were closed by their peers too, after the refusal.
    assert counted == {"peer_closed": 4, "idle": 1, "oversize": 1, "refused": 1,
                       "internal_error": 0}
