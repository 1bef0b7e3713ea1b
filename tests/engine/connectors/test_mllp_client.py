"""The MLLP client and ``switchboard send`` against a real listener, a server that
accepts but never answers, and a port where nothing listens."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from engine.commands.send import send_command, split_messages
from engine.connectors.mllp.client import AckTimeout, MllpClient, MllpConnectionError
from engine.hl7v2 import parse
from tests.engine.connectors.conftest import adt, journal_rows, listening, run
from tests.ports import free_port


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and reads everything, but never answers."""
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def send_in_thread(port: int, files: list[str], timeout: float = 5.0):
    """Run the blocking command off the event loop that serves the listener."""
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(send_command, f"127.0.0.1:{port}", files, timeout, out, err)
    return code, out.getvalue().splitlines(), err.getvalue()


# --- MllpClient -----------------------------------------------------------------------


def test_client_returns_each_ack_over_one_connection(sqlite_ingestor):
    async def scenario():
        async with listening(sqlite_ingestor) as listener:
            async with MllpClient("127.0.0.1", listener.port, timeout=5) as client:
                acks = [parse(await client.send(adt(f"CL{n}"))) for n in range(3)]
            return acks, listener.counters.connections_total

    acks, connections = run(scenario())
    assert [(ack.get("MSA-1"), ack.get("MSA-2")) for ack in acks] == [
        ("AA", "CL0"), ("AA", "CL1"), ("AA", "CL2")]
    assert connections == 1


def test_client_times_out_when_no_ack_comes():
    async def scenario() -> str:
        async with silent_server() as port:
            async with MllpClient("127.0.0.1", port, timeout=0.3) as client:
                with pytest.raises(AckTimeout) as raised:
                    await client.send(adt("CTL1"))
            return str(raised.value)

    message = run(scenario())
    assert message.startswith("MLLP 127.0.0.1:") and "no ACK within 0.3 s" in message


def test_client_cannot_connect_where_nothing_listens():
    port = free_port()

    async def scenario() -> str:
        async with MllpClient("127.0.0.1", port, timeout=2) as client:
            with pytest.raises(MllpConnectionError) as raised:
                await client.send(adt("CTL1"))
        return str(raised.value)

    assert f"cannot connect to MLLP 127.0.0.1:{port}" in run(scenario())


# --- switchboard send -----------------------------------------------------------------


def test_send_prints_one_line_per_message_and_rewrites_nothing(tmp_path, sqlite_engine,
                                                              sqlite_ingestor):
    first = adt("SEND1").replace(b"\r", b"\r\n")  # CRLF line endings, sent as they are
    enhanced_ne = adt("SEND2", modes="|||NE|AL")
    third = adt("SEND3") + b"\n\n"
    messages = tmp_path / "batch.hl7"
    messages.write_bytes(first + enhanced_ne + third)

    async def scenario():
        async with listening(sqlite_ingestor) as listener:
            return await send_in_thread(listener.port, [str(messages)])

    code, lines, err = run(scenario())
    assert (code, err) == (0, "")
    assert lines == [
        f"{messages} message 1: AA",
        f"{messages} message 2: sent (MSH-15 is NE: no ACK expected)",
        f"{messages} message 3: AA",
    ]
    assert [row.raw for row in journal_rows(sqlite_engine)] == [first, enhanced_ne, third]


def test_send_exits_1_when_the_listener_answers_ar(tmp_path, sqlite_ingestor):
    good, bad = tmp_path / "good.hl7", tmp_path / "bad.hl7"
    good.write_bytes(adt("GOOD1"))
    bad.write_bytes(b"PID|1||123^^^RIVERSIDE^MR\r")

    async def scenario():
        async with listening(sqlite_ingestor) as listener:
            return await send_in_thread(listener.port, [str(bad), str(good)])

    code, lines, _err = run(scenario())
    assert code == 1
    assert lines == [
        f"{bad} message 1: AR: an HL7 v2 message must start with an MSH segment",
        f"{good} message 1: AA",
    ]


def test_send_exits_1_on_timeout_and_sends_nothing_after_it(tmp_path):
    messages = tmp_path / "two.hl7"
    messages.write_bytes(adt("WAIT1") + adt("WAIT2"))

    async def scenario():
        async with silent_server() as port:
            return port, await send_in_thread(port, [str(messages)], timeout=0.3)

    port, (code, lines, _err) = run(scenario())
    assert code == 1
    assert lines == [
        f"{messages} message 1: MLLP 127.0.0.1:{port}: no ACK within 0.3 s. "
        "Send the message again; the receiver recognises a duplicate",
        f"{messages} message 2: not sent (an earlier message got no ACK)",
    ]


def test_send_exits_2_when_nothing_listens(tmp_path):
    messages = tmp_path / "one.hl7"
    messages.write_bytes(adt("LOST1"))
    port = free_port()
    out, err = io.StringIO(), io.StringIO()
    assert send_command(f"127.0.0.1:{port}", [str(messages)], 2.0, out, err) == 2
    assert out.getvalue().startswith(
        f"{messages} message 1: cannot connect to MLLP 127.0.0.1:{port}: Connection refused")
    assert err.getvalue() == ""


def test_send_goes_on_after_the_listener_closes_on_an_oversize_message(tmp_path,
                                                                       sqlite_ingestor):
    messages = tmp_path / "big-then-small.hl7"
    big = adt("BIG1") + b"NTE|1||" + b"x" * 4000 + b"\r"
    messages.write_bytes(big + adt("SMALL1"))

    async def scenario():
        async with listening(sqlite_ingestor, max_frame_bytes=1024) as listener:
            return await send_in_thread(listener.port, [str(messages)])

    code, lines, _err = run(scenario())
    assert code == 1
    assert lines[0].startswith(f"{messages} message 1: AR: MLLP frame of at least ")
    assert lines[0].endswith("exceeds the limit of 1024 bytes")
    assert lines[1:] == [f"{messages} message 2: AA"]


@pytest.mark.parametrize(("target", "files", "problem"), [
    ("localhost", ["x.hl7"], "'localhost' is not HOST:PORT"),
    ("localhost:2575", ["missing.hl7"], "cannot read missing.hl7: No such file or directory"),
])
def test_send_exits_2_on_a_bad_target_or_file(tmp_path, monkeypatch, target, files, problem):
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    assert send_command(target, files, 1.0, io.StringIO(), err) == 2
    assert problem in err.getvalue()


@pytest.mark.parametrize(("data", "messages"), [
    (b"", []),
    (b"\r\n\r\n", []),
    (b"MSH|a\rPID|1\r", [b"MSH|a\rPID|1\r"]),
    (b"MSH|a\r\nMSH|b\n\nMSH|c", [b"MSH|a\r\n", b"MSH|b\n\n", b"MSH|c"]),
    (b"PID|1\rMSH|a\r", [b"PID|1\r", b"MSH|a\r"]),
    (b"\xef\xbb\xbfMSH|a\rMSH|b\r", [b"\xef\xbb\xbfMSH|a\r", b"MSH|b\r"]),
])
def test_split_messages_keeps_every_byte(data, messages):
    assert split_messages(data) == messages
