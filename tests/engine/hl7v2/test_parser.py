"""Parsing: separators, line endings, BOM, charsets, laziness, exact round trip, errors."""

from __future__ import annotations

import pytest

from engine.errors import ParseError, SwitchboardError
from engine.hl7v2 import parse, read_header, text_error
from tests.samples import CORPUS_FILES, corpus_ids

ADT = (
    "MSH|^~\\&|HIS|GENHOSP|LAB|GENHOSP|20240102030405+0100||ADT^A01^ADT_A01|CTRL1|P|2.5.1\r"
    "EVN|A01|20240102030405\r"
    "PID|1||123^^^MRN~456^^^SSN||DOE^JOHN^Q||19800101|M\r"
    "PV1|1|I|WARD^101^A\r"
)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_corpus_round_trips_byte_for_byte(path):
    raw = path.read_bytes()
    message = parse(raw)
    assert message.encode() == raw
    assert message.segment_ids[0] == "MSH"
    assert not message.warnings


@pytest.mark.parametrize("eol", ["\r", "\n", "\r\n"])
def test_segment_endings(eol):
    raw = ADT.replace("\r", eol).encode()
    message = parse(raw)
    assert message.segment_ids == ["MSH", "EVN", "PID", "PV1"]
    assert message.get("PV1-3.2") == "101"
    assert message.encode() == raw


def test_mixed_endings_and_blank_lines():
    raw = ADT.replace("EVN", "\nEVN", 1).replace("\rPID", "\r\nPID").encode() + b"\n\n"
    message = parse(raw)
    assert message.segment_ids == ["MSH", "EVN", "PID", "PV1"]
    assert message.encode() == raw


def test_bom_is_accepted_and_kept():
    raw = b"\xef\xbb\xbf" + ADT.encode()
    message = parse(raw)
    assert message.get("MSH-3") == "HIS"
    assert message.encode() == raw


def test_custom_separators_from_msh1_and_msh2():
    text = "MSH#$*@!#HIS#FAC#####ADT$A01#1#P#2.4\rPID#1##A1$$$MRN*B2$$$SSN##DOE$J!R$@T@"
    message = parse(text)
    assert message.get("MSH-1") == "#"
    assert message.get("MSH-2") == "$*@!"
    assert message.get("MSH-9.2") == "A01"
    assert message.get_all("PID-3.1") == ["A1", "B2"]
    assert message.get("PID-5.2") == "J"
    assert message.get("PID-5.2.2") == "R"
    assert message.get("PID-5.3") == "!"


@pytest.mark.parametrize(
    "charset, encoded, expected",
    [
        ("8859/1", "MÜLLER".encode("latin-1"), "MÜLLER"),
        ("UNICODE UTF-8", "MÜLLER".encode(), "MÜLLER"),
        ("unicode utf-8", "MÜLLER".encode(), "MÜLLER"),
        ("", "MÜLLER".encode(), "MÜLLER"),
        ("8859/5", "ИВАНОВ".encode("iso8859-5"), "ИВАНОВ"),
        ("8859/1~UNICODE UTF-8", "MÜLLER".encode("latin-1"), "MÜLLER"),
    ],
)
def test_msh18_charset_decodes(charset, encoded, expected):
    raw = (
        b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5||||||" + charset.encode() + b"\rPID|1||7||"
        + encoded + b"\r"
    )
    message = parse(raw)
    assert message.get("PID-5") == expected
    assert not message.warnings
    assert message.encode() == raw


def test_undecodable_bytes_are_a_warning_not_a_crash():
    raw = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rPID|1||7||M\xfcLLER\r"
    message = parse(raw)
    assert [w.code for w in message.warnings] == ["undecodable-bytes"]
    assert message.warnings[0].segment_number == 2
    assert "M" not in str(message.warnings[0]).replace("MSH", "")  # no content in warnings
    assert message.get("PID-5").startswith("M")
    assert message.encode() == raw
    message.set("PID-1", "2")
    assert message.encode() == raw.replace(b"PID|1|", b"PID|2|")


def test_unknown_charset_is_a_warning():
    message = parse(b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5||||||KLINGON\rPID|1\r")
    assert [w.code for w in message.warnings] == ["unknown-charset"]
    assert message.codec == "utf-8"


def test_line_break_inside_a_segment_is_kept_with_a_warning():
    raw = ADT.replace("DOE^JOHN", "DOE\nsecond line^JOHN").encode()
    message = parse(raw)
    assert message.segment_ids == ["MSH", "EVN", "PID", "PV1"]
    assert message.get("PID-5") == "DOE\nsecond line"
    assert [w.code for w in message.warnings] == ["line-break-in-segment"]
    assert message.encode() == raw


def test_parsing_is_lazy():
    message = parse(ADT)
    # White-box: only the segments actually read have been split into fields.
    assert message._parts == [None, None, None, None]
    message.get("PID-3")
    assert [p is not None for p in message._parts] == [False, False, True, False]


def test_header_properties():
    message = parse(ADT)
    assert (message.message_type, message.trigger_event) == ("ADT", "A01")
    assert (message.control_id, message.version) == ("CTRL1", "2.5.1")
    assert "DOE" not in repr(message)


def test_str_input_encodes_with_its_charset():
    message = parse(ADT.replace("MSH|", "\ufeffMSH|"))
    assert message.encode() == b"\xef\xbb\xbf" + ADT.encode()


def test_read_header_ignores_a_broken_body():
    header = read_header(ADT.encode() + b"\x00\x01garbage that is not a segment")
    assert header.segment_ids == ["MSH"]
    assert header.control_id == "CTRL1"


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"", "the message is empty"),
        (b"   \r\n", "the message is empty"),
        (b"PID|1||123", "must start with an MSH segment"),
        (b"MSH", "ends before its field separator"),
        (b"MSH|", "ends before its field separator"),
        (b"MSH|^~\\&", None),
        (b"MSHA^~\\&|", "MSH-1 field separator 'A'"),
        (b"MSH|^^\\&|A", "repeat a delimiter"),
        (b"MSH||A|B", "must be 1 to 5 delimiters"),
        (b"MSH|^~\\&1|A", "encoding character '1'"),
        (b"MSH|^~\\&\xff|A", "encoding character"),
        (b"\x00\x01\x02", "must start with an MSH segment"),
    ],
)
def test_malformed_input_raises_parse_error_with_reason(raw, fragment):
    if fragment is None:
        assert parse(raw).segment_ids == ["MSH"]
        return
    with pytest.raises(ParseError) as caught:
        parse(raw)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, SwitchboardError)


def test_parse_error_names_segment_and_field():
    with pytest.raises(ParseError) as caught:
        parse(b"MSH|^^\\&|A")
    error = caught.value
    assert (error.segment, error.segment_number, error.field) == ("MSH", 1, 2)
    assert str(error).startswith("segment 1 (MSH), MSH-2: ")


def test_wrong_type_is_a_parse_error():
    with pytest.raises(ParseError, match="must be bytes or str, not int"):
        parse(42)  # type: ignore[arg-type]


def test_segment_texts_are_a_copy_in_order():
    message = parse(ADT.replace("\r", "\n"))
    texts = message.segment_texts()
    assert [t[:3] for t in texts] == ["MSH", "EVN", "PID", "PV1"]
    texts.clear()
    assert len(message) == 4


@pytest.mark.parametrize("raw, location, fragment", [
    (b"MSH|^~\\&|EHR|RIV|||20260101||ADT^A01|1|P|2.5.1\rPID|1||12||DO\xffE^JANE\r",
     ("PID", 1, 5), "not valid utf-8, the character set taken when MSH-18 is empty"),
    (b"MSH|^~\\&|E\xffHR|RIV|||20260101||ADT^A01|1|P|2.5.1\r",
     ("MSH", 1, 3), "not valid utf-8"),
    (b"MSH|^~\\&|EHR|RIV|||20260101||ORU^R01|1|P|2.5.1\rOBX|1|TX\rOBX|2|TX|||a\x00b\r",
     ("OBX", 2, 5), "NUL"),
    (b"MSH|^~\\&|EHR|RIV|||20260101||ADT^A01|1|P|2.5.1||||||UNICODE UTF-8\rPID|1||\xc3\r",
     ("PID", 1, 3), "the character set MSH-18 declares"),
    # A JIS escape sequence broken by ASCII bytes: the ISO 2022 decoder cannot resume
    # under surrogateescape, which has no escape for ASCII (found by bench/fuzz).
    (b"MSH|^~\\&|EHR|RIV|||20260101||ADT^A01|1|P|2.5.1||||||ISO 2022-1994\r"
     b"PID|1||12||\x1b$B;3ED\x1b~(B^JANE\r",
     ("PID", 1, 5), "not valid iso2022_jp, the character set MSH-18 declares"),
])
def test_text_error_locates_what_cannot_be_text(raw, location, fragment):
    error = text_error(parse(raw))
    assert error is not None
    assert (error.segment, error.occurrence, error.field) == location
    assert fragment in error.reason


@pytest.mark.parametrize("raw", [
    b"MSH|^~\\&|EHR|RIV|||20260101||ADT^A01|1|P|2.5.1\rPID|1||12||DOE^JAN\xc3\xa9\r",
    b"MSH|^~\\&|EHR|RIV|||20260101||ADT^A01|1|P|2.5.1||||||8859/1\rPID|1||12||DO\xe9\r",
])
def test_text_error_is_none_when_every_byte_is_text(raw):
    assert text_error(parse(raw)) is None


def test_a_connections_charset_applies_when_msh_18_names_none():
    latin = b"MSH|^~\\&|EHR|RIV|||20260101||ADT^A01|1|P|2.5.1\rPID|1||12||M\xfcLLER\r"
    assert text_error(parse(latin)) is not None  # UTF-8 when nobody says otherwise
    message = parse(latin, "8859/1")
    assert (message.get("PID-5"), text_error(message)) == ("MüLLER", None)
    assert message.encode() == latin
    declared = latin.replace(b"2.5.1\r", b"2.5.1||||||UNICODE UTF-8\r").replace(
        b"\xfc", b"\xc3\xbc")
    assert parse(declared, "8859/1").get("PID-5") == "MüLLER"  # MSH-18 wins
    with pytest.raises(ParseError, match="not a character set Switchboard knows"):
        parse(latin, "EBCDIC")
