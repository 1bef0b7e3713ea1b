"""The MLLP sink against real sockets on 127.0.0.1: a scripted destination that answers
each message as a test says (ACK, refusal, garbage, silence, hang-up), a port where
nothing listens, and Switchboard's own listener."""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import replace

import pytest

from engine.connectors import ConnectorError
from engine.connectors.mllp.sender import MllpSender
from engine.connectors.sink import DeliveryFailed, Outbound, sink_factory
from engine.encoders import outbound_control_id
from engine.hl7v2 import Message, parse
from engine.hl7v2.ack import AckError, build_ack_text
from engine.hl7v2.mllp import FrameDecoder
from engine.rules.catalog_entry import Connection, MllpEndpoint
from engine.rules.exception_policy import ErrorClass
from tests.engine.connectors.conftest import journal_rows, listening, run
from tests.ports import free_port

DESTINATION = "lab-system"
ADT = (
    "MSH|^~\\&|SWITCHBOARD|RIVERSIDE|LAB-SYSTEM|LAB|20261124101500||ADT^A01^ADT_A01"
    "|{control_id}|P|{version}{msh18}\r"
    "PID|1||MRN1^^^RIVERSIDE^MR||{surname}^JANE\r"
)
HANG_UP = b"<hang up>"  # a reply that closes the connection instead of answering

Reply = Callable[[Message], bytes | None]


def outbound(message_id: str = "msg-1", *, surname: str = "DOE", version: str = "2.5.1",
             msh18: str = "") -> Outbound:
    """A delivery as the outbox hands it over: MSH-10 is the delivery's control id."""
    body = ADT.format(control_id=outbound_control_id(message_id, DESTINATION),
                      version=version, msh18=msh18, surname=surname)
    return Outbound(delivery_id=1, journal_id=1, message_id=message_id,
                    destination=DESTINATION, idempotency_key=f"{message_id}:{DESTINATION}",
                    media_type="application/hl7-v2", body=body)


def acknowledge(code: str, error: AckError | None = None) -> Reply:
    """A reply built by Switchboard's own ACK builder (enhanced mode for C* codes)."""
    def reply(message: Message) -> bytes:
        return parse(build_ack_text(message, code, error, enhanced=code[0] == "C")).encode()
    return reply


def raw_ack(msa: str, err: str = "") -> Reply:
    """A hand-written ACK; ``{control_id}`` in ``msa`` is the MSH-10 received."""
    def reply(message: Message) -> bytes:
        msa_fields = msa.format(control_id=message.get("MSH-10"))
        return (f"MSH|^~\\&|LIS|LAB|SWITCHBOARD|RIVERSIDE|20261124101501||ACK^A01^ACK|A1|P"
                f"|2.5.1\rMSA|{msa_fields}\r{err}").encode()
    return reply


def say_nothing(_message: Message) -> None:
    return None


def hang_up(_message: Message) -> bytes:
    return HANG_UP


class Destination(socketserver.ThreadingTCPServer):
    """A test MLLP destination: answers each message with the next scripted reply (AA
    once the script is used up) and keeps every byte each connection brought."""

    allow_reuse_address = True

    def __init__(self, replies: tuple[Reply, ...]) -> None:
        super().__init__(("127.0.0.1", 0), _Conversation)
        self.replies = deque(replies)
        self.streams: list[bytearray] = []
        self.received: list[bytes] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def reply_to(self, payload: bytes) -> bytes | None:
        self.received.append(payload)
        reply = self.replies.popleft() if self.replies else acknowledge("AA")
        return reply(parse(payload))


class _Conversation(socketserver.BaseRequestHandler):
    server: Destination

    def handle(self) -> None:
        stream = bytearray()
        self.server.streams.append(stream)
        decoder = FrameDecoder()
        with suppress(OSError):
            while data := self.request.recv(65536):
                stream += data
                for frame in decoder.feed(data):
                    assert isinstance(frame, bytes)
                    answer = self.server.reply_to(frame)
                    if answer == HANG_UP:
                        return
                    if answer is not None:
                        self.request.sendall(b"\x0b" + answer + b"\x1c\r")


@contextmanager
def destination(*replies: Reply) -> Iterator[Destination]:
    """A running destination; close every sender before leaving (it waits for them)."""
    server = Destination(replies)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def sender(port: int, ack_timeout: float = 5.0) -> closing[MllpSender]:
    return closing(MllpSender(MllpEndpoint("127.0.0.1", port), ack_timeout=ack_timeout))


def failure(mllp: MllpSender, delivery: Outbound) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as raised:
        mllp.send(delivery)
    return raised.value


# --- delivered -------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["AA", "CA"])
def test_a_positive_ack_delivers_the_exact_bytes_framed(code):
    delivery = outbound()
    with destination(acknowledge(code)) as lis, sender(lis.port) as mllp:
        mllp.send(delivery)
    assert lis.streams == [b"\x0b" + delivery.body.encode() + b"\x1c\r"]
    assert parse(lis.received[0]).get("MSH-10") == outbound_control_id("msg-1", DESTINATION)


def test_one_connection_carries_every_delivery():
    with destination() as lis, sender(lis.port) as mllp:
        mllp.send(outbound("msg-1"))
        mllp.send(outbound("msg-2"))
    assert len(lis.streams) == 1
    assert [parse(payload).get("MSH-10") for payload in lis.received] == [
        outbound_control_id("msg-1", DESTINATION), outbound_control_id("msg-2", DESTINATION)]


def test_the_body_is_sent_in_the_character_set_msh18_names():
    delivery = outbound(surname="MÜLLER", msh18="||||||8859/1")
    with destination() as lis, sender(lis.port) as mllp:
        mllp.send(delivery)
    assert lis.received == [delivery.body.encode("iso8859-1")]


def test_a_kept_connection_the_destination_closed_is_opened_again():
    with destination(acknowledge("AA"), hang_up) as lis, sender(lis.port) as mllp:
        mllp.send(outbound("msg-1"))
        mllp.send(outbound("msg-2"))  # hung up on, then sent again: delivered
    assert len(lis.streams) == 2
    assert lis.received[1] == lis.received[2]  # the same MSH-10: a repeat it can drop


def test_the_factory_builds_a_sender_from_the_catalog_entry():
    connection = Connection.from_dict({
        "id": DESTINATION, "name": "Laboratory information system", "direction": "outbound",
        "transport": "mllp", "format": "hl7v2",
        "endpoint": {"host": "127.0.0.1", "port": 6661, "ack_timeout": "2s"},
    })
    mllp = sink_factory("mllp")(connection, None)
    try:
        assert isinstance(mllp, MllpSender)
        assert (mllp.endpoint.port, mllp.ack_timeout) == (6661, 2.0)
    finally:
        mllp.close()
        mllp.close()  # closing twice is allowed


def test_the_factory_refuses_a_connection_without_an_mllp_endpoint():
    connection = Connection.from_dict({
        "id": "warehouse", "name": "Warehouse", "direction": "outbound",
        "transport": "file", "format": "hl7v2", "endpoint": {"directory": "/tmp/out"},
    })
    with pytest.raises(ConnectorError, match="'warehouse' has no MLLP endpoint"):
        sink_factory("mllp")(connection, None)


def test_switchboards_own_listener_journals_what_the_sender_delivered(sqlite_engine,
                                                                      sqlite_ingestor):
    delivery = outbound()

    def deliver(port: int) -> None:
        with sender(port) as mllp:
            mllp.send(delivery)

    async def scenario() -> None:
        async with listening(sqlite_ingestor) as listener:
            await asyncio.to_thread(deliver, listener.port)

    run(scenario())
    assert [row.raw for row in journal_rows(sqlite_engine)] == [delivery.body.encode()]


# --- refused ---------------------------------------------------------------------------

# Every refusal echoes patient data ("DOE JANE") in its free text; the reason keeps codes.
REFUSALS = [
    (acknowledge("AR", AckError(103, "DOE JANE: no such ward")),
     "lab-system answered AR: error 103 (HL70357 Table value not found)"),
    (acknowledge("AE", AckError(207, "DOE JANE is locked")),
     "lab-system answered AE: error 207 (HL70357 Application internal error)"),
    (acknowledge("CR", AckError(101, "DOE JANE lacks PID-7")),
     "lab-system answered CR: error 101 (HL70357 Required field missing)"),
    (acknowledge("CE"), "lab-system answered CE"),
    (raw_ack("AR|{control_id}|DOE JANE unknown"), "lab-system answered AR"),
    (raw_ack("AE|{control_id}", "ERR||PID^1^5|E42^DOE JANE not on file^L|E\r"),
     "lab-system answered AE: error E42 (L)"),
    (raw_ack("AE|{control_id}", "ERR|||DOE JANE not on file^^L|E\r"),
     "lab-system answered AE"),
]


@pytest.mark.parametrize(("reply", "reason"), REFUSALS)
def test_a_refusal_is_rejected_with_its_codes_and_no_message_text(reply, reason):
    with destination(reply) as lis, sender(lis.port) as mllp:
        failed = failure(mllp, outbound())
        mllp.send(outbound("msg-2"))  # the stream is in step: the connection is kept
    assert (failed.error_class, failed.reason) == (ErrorClass.REJECTED, reason)
    assert "DOE" not in str(failed)
    assert len(lis.streams) == 1


def test_an_old_version_ack_gives_the_code_from_err1_not_msa3():
    reply = acknowledge("AR", AckError(204, "DOE JANE"))
    with destination(reply) as lis, sender(lis.port) as mllp:
        failed = failure(mllp, outbound(version="2.3"))
    assert "DOE" in lis.received[0].decode()  # the sample does carry the name ...
    assert failed.reason == "lab-system answered AR: error 204 (HL70357 Unknown key identifier)"
    assert "DOE" not in str(failed)  # ... the reason does not


# --- failed in transit -----------------------------------------------------------------


NOT_AN_ACK = "answered with something that is not an ACK"


@pytest.mark.parametrize(("reply", "what"), [
    (raw_ack("AA|SOMEONE-ELSES-ID"),
     "acknowledged another message (MSA-2 is not the MSH-10 sent)"),
    (lambda _message: b"garbled: not an acknowledgement", NOT_AN_ACK),
    (raw_ack("XX|{control_id}"), NOT_AN_ACK),
    (lambda _message: b"MSH|^~\\&|LIS|LAB|||20261124||ACK|A1|P|2.5.1\r", NOT_AN_ACK),
])
def test_an_ack_out_of_step_closes_the_connection(reply, what):
    with destination(reply) as lis, sender(lis.port) as mllp:
        failed = failure(mllp, outbound())
        mllp.send(outbound("msg-2"))
    assert failed.error_class is ErrorClass.TRANSPORT_ERROR
    assert failed.reason == f"lab-system {what}; the connection was closed"
    assert len(lis.streams) == 2  # the next delivery opened a new connection


def test_no_ack_in_time_is_a_timeout_and_the_next_send_reconnects():
    with destination(say_nothing) as lis, sender(lis.port, ack_timeout=0.3) as mllp:
        failed = failure(mllp, outbound())
        mllp.send(outbound("msg-2"))
    assert failed.error_class is ErrorClass.TIMEOUT
    assert failed.reason == f"lab-system: MLLP 127.0.0.1:{lis.port}: no ACK within 0.3 s"
    assert len(lis.streams) == 2


def test_a_destination_that_hangs_up_without_an_ack_is_a_transport_error():
    with destination(hang_up) as lis, sender(lis.port) as mllp:
        failed = failure(mllp, outbound())
    assert failed.error_class is ErrorClass.TRANSPORT_ERROR
    assert "closed the connection without an ACK" in failed.reason


def test_nothing_listening_is_a_transport_error():
    port = free_port()
    with sender(port) as mllp:
        failed = failure(mllp, outbound())
    assert failed.error_class is ErrorClass.TRANSPORT_ERROR
    assert failed.reason == (
        f"lab-system: cannot connect to MLLP 127.0.0.1:{port}: Connection refused")


# --- not sendable ----------------------------------------------------------------------


@pytest.mark.parametrize(("delivery", "reason"), [
    (outbound(surname="MÜLLER", msh18="||||||ASCII"),
     "lab-system: a value holds a character that MSH-18's character set (ascii) "
     "cannot represent"),
    (outbound(surname="DOE\x0bJANE"), "lab-system: HL7 message contains a VT (0x0B) byte"),
    (Outbound(1, 1, "msg-1", DESTINATION, f"msg-1:{DESTINATION}", "application/hl7-v2",
              "PID|1||MRN1||DOE^JANE\r"), "lab-system: the body is not an HL7 v2 message"),
    (replace(outbound(), body=ADT.format(control_id="", version="2.5.1", msh18="",
                                         surname="DOE")),
     "lab-system: the message has no MSH-10"),
])
def test_a_body_that_cannot_be_sent_is_a_validation_failure(delivery, reason):
    with destination() as lis, sender(lis.port) as mllp:
        failed = failure(mllp, delivery)
    assert failed.error_class is ErrorClass.VALIDATION
    assert failed.reason.startswith(reason)
    assert "DOE" not in str(failed)
    assert lis.received == []
