"""Editing: set, set_raw, repetitions and segments; parse -> edit -> encode -> parse."""

from __future__ import annotations

import pytest

from engine.errors import EditError, PathError
from engine.hl7v2 import parse

TEXT = (
    "MSH|^~\\&|HIS|GENHOSP|LAB||20240102||ADT^A08|C1|P|2.5.1\r"
    "PID|1||123^^^MRN~456^^^SSN||DOE^JOHN\r"
    "PV1|1|I\r"
)


def edited(action):
    message = parse(TEXT.encode())
    action(message)
    again = parse(message.encode())
    assert again.encode() == message.encode()
    return message, again


@pytest.mark.parametrize(
    "path, value, raw_after",
    [
        ("PID-5.1", "O'NEIL", "PID|1||123^^^MRN~456^^^SSN||O'NEIL^JOHN"),
        ("PID-5", "ROE", "PID|1||123^^^MRN~456^^^SSN||ROE^JOHN"),  # first primitive only
        ("PID-3[2].4", "PASSPORT", "PID|1||123^^^MRN~456^^^PASSPORT||DOE^JOHN"),
        ("PID-3[3].1", "789", "PID|1||123^^^MRN~456^^^SSN~789||DOE^JOHN"),
        ("PID-5.3.2", "X", "PID|1||123^^^MRN~456^^^SSN||DOE^JOHN^&X"),
        ("PID-8", "F", "PID|1||123^^^MRN~456^^^SSN||DOE^JOHN|||F"),
        (
            "PID-5.2",
            "A|B^C&D~E\\F",
            "PID|1||123^^^MRN~456^^^SSN||DOE^A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F",
        ),
        ("PID-5.2", "two\nlines", "PID|1||123^^^MRN~456^^^SSN||DOE^two\\.br\\lines"),
        ("PID-9", "", "PID|1||123^^^MRN~456^^^SSN||DOE^JOHN"),  # no padding for nothing
    ],
)
def test_set(path, value, raw_after):
    message, again = edited(lambda m: m.set(path, value))
    assert message.get_raw("PID") == raw_after
    # Writing nothing into an absent position leaves it absent.
    assert again.get(path) == (value if value else None)
    assert again.get("PV1-2") == "I"


def test_set_keeps_line_endings_and_bom():
    raw = b"\xef\xbb\xbf" + TEXT.replace("\r", "\r\n").encode()
    message = parse(raw)
    message.set("PV1-2", "O")
    assert message.encode() == raw.replace(b"PV1|1|I", b"PV1|1|O")


@pytest.mark.parametrize(
    "path, encoded, raw_after",
    [
        ("PID-3", "9^^^X", "PID|1||9^^^X~456^^^SSN||DOE^JOHN"),
        ("PID-3[*]", "1~2", "PID|1||1~2||DOE^JOHN"),
        ("PID-5.1", "A&B", "PID|1||123^^^MRN~456^^^SSN||A&B^JOHN"),
    ],
)
def test_set_raw(path, encoded, raw_after):
    message, _ = edited(lambda m: m.set_raw(path, encoded))
    assert message.get_raw("PID") == raw_after


@pytest.mark.parametrize(
    "path, encoded",
    [("PID-3", "1~2"), ("PID-5.1", "A^B"), ("PID-5.1.1", "A&B"), ("PID-3[*]", "a|b")],
)
def test_set_raw_refuses_higher_delimiters(path, encoded):
    message = parse(TEXT)
    with pytest.raises(EditError, match="may not contain"):
        message.set_raw(path, encoded)


def test_repetitions():
    message, again = edited(lambda m: m.insert_repetition("PID-3[2]", "999^^^NEW", raw=True))
    assert again.get_all("PID-3.4") == ["MRN", "NEW", "SSN"]
    message.remove_repetition("PID-3[1]")
    assert parse(message.encode()).get_all("PID-3.1") == ["999", "456"]
    message.insert_repetition("PID-3[3]", "a~b")
    assert parse(message.encode()).get_all("PID-3") == ["999", "456", "a~b"]
    with pytest.raises(EditError, match="only 3 repetitions"):
        message.remove_repetition("PID-3[4]")


def test_insert_repetition_into_empty_field():
    message = parse(TEXT)
    message.insert_repetition("PID-13[1]", "555-1234")
    assert message.get_all("PID-13") == ["555-1234"]


def test_segments():
    message = parse(TEXT)
    message.insert_segment("EVN|A08|20240102", after="MSH")
    message.insert_segment("NK1|1|DOE^JANE", before="PV1")
    message.insert_segment("OBX|1|ST|X||1")
    message.insert_segment("OBX|2|ST|X||2")
    assert message.segment_ids == ["MSH", "EVN", "PID", "NK1", "PV1", "OBX", "OBX"]
    message.replace_segment("OBX[2]", "OBX|2|ST|X||two")
    message.remove_segment("NK1")
    again = parse(message.encode())
    assert again.segment_ids == ["MSH", "EVN", "PID", "PV1", "OBX", "OBX"]
    assert again.get_all("OBX[*]-5") == ["1", "two"]


@pytest.mark.parametrize(
    "action, error, fragment",
    [
        (lambda m: m.set("ZZZ-1", "x"), EditError, "no ZZZ segment"),
        (lambda m: m.set("MSH-1", "#"), EditError, "declares the separators"),
        (lambda m: m.set("MSH-2", "$"), EditError, "declares the separators"),
        (lambda m: m.set("OBX[*]-5", "x"), PathError, "[*] is not allowed"),
        (lambda m: m.set("PID", "x"), PathError, "name a field"),
        (lambda m: m.remove_segment("MSH"), EditError, "MSH cannot be removed"),
        (lambda m: m.replace_segment("MSH", "MSH|x"), EditError, "MSH cannot be replaced"),
        (lambda m: m.insert_segment("bad segment"), EditError, "segment ID"),
        (lambda m: m.insert_segment("OBX|1\rPID|2"), EditError, "without line breaks"),
        (lambda m: m.insert_segment("MSH|^~\\&|X"), EditError, "one header"),
        (lambda m: m.insert_segment("EVN|1", before="MSH"), EditError, "before MSH"),
        (lambda m: m.remove_segment("OBX"), EditError, "no such segment"),
        (lambda m: m.set("PID-5", 5), EditError, "must be a string"),  # type: ignore[arg-type]
    ],
)
def test_bad_edits_explain_themselves(action, error, fragment):
    message = parse(TEXT)
    with pytest.raises(error) as caught:
        action(message)
    assert fragment in str(caught.value)
    assert message.encode() == TEXT.encode()


def test_value_outside_the_declared_charset_is_an_edit_error():
    message = parse(b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5||||||ASCII\rPID|1\r")
    message.set("PID-5", "MÜLLER")
    with pytest.raises(EditError, match="cannot represent"):
        message.encode()
