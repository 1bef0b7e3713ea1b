"""Acknowledgements, checked against the rules of HL7 v2 chapter 2.9."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from engine.errors import ParseError, SwitchboardError
from engine.hl7v2 import ack as ack_module
from engine.hl7v2 import parse
from engine.hl7v2.ack import (
    AckError,
    accept_ack,
    accept_ack_bytes,
    ack_modes,
    application_ack,
    hl7_timestamp,
    new_control_id,
    original_ack,
    original_ack_bytes,
    reject,
)
from tests.samples import CORPUS_FILES, read

TIMESTAMP = re.compile(r"^\d{14}\.\d{4}[+-]\d{4}$")


def enhanced(raw: bytes, accept: str, application: str) -> bytes:
    message = parse(raw)
    message.set("MSH-15", accept)
    message.set("MSH-16", application)
    return message.encode()


V23 = read("fhir-converter/ADT01-23.hl7")  # MSH-12 2.3, original mode
# MSH-12 2.5.1; the sample asks for enhanced mode, so clear MSH-15/16 for original mode.
V251 = enhanced(read("fhir-converter/MDHHS-OML-O21-1.hl7"), "", "")


def check_header(ack, original):
    assert ack.get_raw("MSH-3") == original.get_raw("MSH-5")
    assert ack.get_raw("MSH-4") == original.get_raw("MSH-6")
    assert ack.get_raw("MSH-5") == original.get_raw("MSH-3")
    assert ack.get_raw("MSH-6") == original.get_raw("MSH-4")
    assert TIMESTAMP.match(ack.get("MSH-7"))
    assert 1 <= len(ack.get("MSH-10")) <= 20
    assert ack.get("MSH-10") != original.get("MSH-10")
    assert ack.get_raw("MSH-12") == original.get_raw("MSH-12")
    assert ack.get("MSA-2") == original.get("MSH-10")
    assert ack.get("MSH-9.1") == "ACK"
    assert ack.get("MSH-9.2") == original.get("MSH-9.2")


@pytest.mark.parametrize("raw", [V23, V251], ids=["v2.3", "v2.5.1"])
@pytest.mark.parametrize("code", ["AA", "AE", "AR"])
def test_original_mode(raw, code):
    original = parse(raw)
    assert not ack_modes(original).enhanced
    ack = original_ack(original, code)
    check_header(ack, original)
    assert ack.segment_ids == ["MSH", "MSA"]
    assert ack.get("MSA-1") == code
    assert ack.get("MSH-15") is None and ack.get("MSH-16") is None


def test_message_structure_only_from_v231():
    assert original_ack(parse(V23)).get_raw("MSH-9") == "ACK^A01"
    assert original_ack(parse(V251)).get_raw("MSH-9") == "ACK^O21^ACK"


def test_err_v23_uses_err1():
    error = AckError(101, "PID-3 is empty: the patient cannot be identified", "PID", 1, 3)
    ack = original_ack(parse(V23), "AE", error)
    assert ack.segment_ids == ["MSH", "MSA", "ERR"]
    assert ack.get_raw("ERR-1") == "PID^1^3^101&Required field missing&HL70357"
    assert ack.get("ERR-1.4.1") == "101"
    assert ack.get("ERR-2") is None
    assert ack.get("MSA-3") == "PID-3 is empty: the patient cannot be identified"


def test_err_v25_uses_err2_err3_err4():
    error = AckError(207, "store unavailable | retry", severity="E")
    ack = original_ack(parse(V251), "AE", error)
    assert ack.get("ERR-1") == ""
    assert ack.get_raw("ERR-3") == "207^Application internal error^HL70357"
    assert ack.get("ERR-4") == "E"
    assert ack.get("ERR-8") == "store unavailable | retry"
    assert ack.get("MSA-3") in (None, "")
    located = original_ack(parse(V251), "AR", AckError(102, "bad date", "PID", 1, 7, 1, 1))
    assert located.get_raw("ERR-2") == "PID^1^7^1^1"


@pytest.mark.parametrize("raw", [V23, V251], ids=["v2.3", "v2.5.1"])
@pytest.mark.parametrize(
    "msh15, code, expected",
    [
        ("AL", "CA", "CA"), ("AL", "CR", "CR"), ("NE", "CA", None), ("NE", "CE", None),
        ("ER", "CA", None), ("ER", "CE", "CE"), ("SU", "CA", "CA"), ("SU", "CR", None),
        ("", "CA", "CA"),
    ],
)
def test_enhanced_accept_ack(raw, msh15, code, expected):
    original = parse(enhanced(raw, msh15, "AL"))
    assert ack_modes(original).enhanced
    ack = accept_ack(original, code)
    if expected is None:
        assert ack is None
        return
    check_header(ack, original)
    assert ack.get("MSA-1") == expected
    assert (ack.get("MSH-15"), ack.get("MSH-16")) == ("NE", "NE")


@pytest.mark.parametrize(
    "msh16, code, sent", [("AL", "AA", True), ("NE", "AA", False), ("ER", "AA", False),
                          ("ER", "AE", True), ("SU", "AR", False), ("SU", "AA", True)],
)
def test_enhanced_application_ack_is_its_own_message(msh16, code, sent):
    original = parse(enhanced(V251, "AL", msh16))
    commit = accept_ack(original, "CA")
    ack = application_ack(original, code)
    assert (ack is not None) is sent
    if ack is not None:
        check_header(ack, original)
        assert ack.get("MSA-1") == code
        assert ack.get("MSH-10") != commit.get("MSH-10")


def test_codes_are_checked():
    with pytest.raises(SwitchboardError, match="not one of AA, AE, AR"):
        original_ack(parse(V251), "CA")


def test_reject_unparseable_input_from_its_header():
    broken = V251.split(b"\n")[0] + b"\nPID|\x00junk\n" + b"\x01" * 10
    error = ParseError("not a segment", segment_number=2)
    ack = reject(broken, error)
    assert ack.get("MSA-1") == "AR"
    assert ack.get("MSA-2") == parse(V251).get("MSH-10")
    assert ack.get("ERR-3.1") == "102"
    enhanced_broken = enhanced(V251, "AL", "AL").split(b"\n")[0] + b"\n\x00"
    assert reject(enhanced_broken, error).get("MSA-1") == "CR"
    silent = enhanced(V251, "NE", "AL").split(b"\n")[0] + b"\n\x00"
    assert reject(silent, error) is None


def test_reject_with_no_readable_header():
    ack = reject(b"\x00\x01garbage", ParseError("the message must start with MSH"))
    assert ack.get("MSA-1") == "AR"
    assert ack.get("MSA-2") in ("", None)
    assert ack.get("ERR-8") == "the message must start with MSH"


def test_control_ids_are_unique_and_at_most_20_characters():
    ids = {new_control_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    assert all(len(i) == 20 and i.isalnum() for i in ids)


@pytest.mark.parametrize("offset", [0, 5.5, -8])
def test_timestamp_carries_the_offset(offset):
    zone = timezone(timedelta(hours=offset))
    moment = datetime(2024, 3, 1, 12, 30, 5, 123456, tzinfo=zone)
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(int(abs(offset) * 60), 60)
    expected_zone = f"{sign}{hours:02d}{minutes:02d}"
    stamp = hl7_timestamp(moment)
    assert TIMESTAMP.match(stamp)
    assert stamp == "20240301123005.1234" + expected_zone


@pytest.mark.parametrize("cached_second", [
    None,  # nothing cached yet
    "now",  # formatted earlier in this second
    "a second ago",  # the clock has crossed a second boundary since
    "an hour ago",
])
def test_the_current_timestamp_is_now_in_local_time(monkeypatch, cached_second):
    """The current time is formatted from a per-second cache: it must still be now, in
    the machine's zone, to the tenth of a millisecond, whatever the cache held."""
    now = time.time_ns() // 1_000_000_000
    second = {None: None, "now": now, "a second ago": now - 1, "an hour ago": now - 3600}
    if cached_second is None:
        monkeypatch.setattr(ack_module, "_SECOND", (None, "", ""))
    else:  # what an earlier call made of its second (for "now", the real formatting)
        moment = datetime.fromtimestamp(second[cached_second]).astimezone()
        monkeypatch.setattr(ack_module, "_SECOND", (
            second[cached_second], moment.strftime("%Y%m%d%H%M%S"), moment.strftime("%z")))
    before = datetime.now().astimezone()
    stamp = hl7_timestamp()
    after = datetime.now().astimezone()
    assert TIMESTAMP.match(stamp)
    read = datetime.strptime(stamp, "%Y%m%d%H%M%S.%f%z")
    assert before - timedelta(microseconds=100) <= read <= after
    assert stamp.endswith(before.strftime("%z")) or stamp.endswith(after.strftime("%z"))


def test_ack_escapes_error_text():
    ack = original_ack(parse(V23), "AE", AckError(207, "a|b^c"))
    assert parse(ack.encode()).get("MSA-3") == "a|b^c"


LATIN1 = ("MSH|^~\\&|\u00c5RHUS|B|C|D|20240101||ADT^A01|7|P|2.5|||AL|NE||8859/1\r"
          "PID|1||1^^^H||DOE^JANE\r").encode("latin-1")


def _readable(path):
    try:
        return parse(path.read_bytes())
    except ParseError:
        return None


@pytest.mark.parametrize("code", ["AA", "AE", "AR"])
def test_ack_bytes_are_the_encoded_ack(code):
    """The ACK built straight to bytes (ingest's path) is byte for byte the ACK built
    as a message and encoded, for every corpus message and a Latin-1 one."""
    fixed = {"control_id": "ACK1", "timestamp": "20260101120000"}
    warning = AckError(205, "held for review", "MSH", 1, 10, severity="W")
    messages = [m for m in map(_readable, CORPUS_FILES) if m is not None]
    messages.append(parse(LATIN1))
    assert len(messages) > 50
    for message in messages:
        for error in (None, warning):
            assert original_ack_bytes(message, code, error, **fixed) == original_ack(
                message, code, error, **fixed).encode()
            accept = {"AA": "CA", "AE": "CE", "AR": "CR"}[code]
            built = accept_ack(message, accept, error, **fixed)
            assert accept_ack_bytes(message, accept, error, **fixed) == (
                built.encode() if built is not None else None)
    assert b"\xc5RHUS" in original_ack_bytes(parse(LATIN1), code, **fixed)
