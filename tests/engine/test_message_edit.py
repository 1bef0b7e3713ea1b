"""Editing a failed message or body by hand: the original as a person edits it, the
edit as it is sent, and the difference between them."""

from __future__ import annotations

import pytest

from engine.message_edit import (
    edit_diff,
    editable_text,
    edited_body,
    kind_of_media,
    message_text,
)

ADT = "MSH|^~\\&|EHR|NORTH|||202601010830||ADT^A08|MSG1|P|2.5\rPID|1||123^^^MRN||Doe^Jane\r"


@pytest.mark.parametrize(("text", "kind", "shown"), [
    (ADT, "hl7v2", "MSH|^~\\&|EHR|NORTH|||202601010830||ADT^A08|MSG1|P|2.5\n"
                   "PID|1||123^^^MRN||Doe^Jane"),
    ("MSH|x\r\nPID|1\n\nPV1|1", "hl7v2", "MSH|x\nPID|1\nPV1|1"),
    ('{"a":1,"b":[1,2]}', "json", '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}'),
    ('{"name":"Zoë"}', "json", '{\n  "name": "Zoë"\n}'),
    ("{not json\r\nat all", "json", "{not json\nat all"),
    ("a\r\nb", "text", "a\nb"),
])
def test_the_original_is_edited_a_segment_or_a_line_at_a_time(text, kind, shown):
    assert editable_text(text, kind) == shown


@pytest.mark.parametrize(("typed", "kind", "sent"), [
    ("MSH|x\r\nPID|1\r\n", "hl7v2", "MSH|x\rPID|1\r"),
    ("MSH|x\n\n  \nPID|1", "hl7v2", "MSH|x\rPID|1\r"),
    ('{\r\n  "a": 2\r\n}', "json", '{\n  "a": 2\n}'),
])
def test_an_edit_is_sent_with_the_line_ends_its_format_wants(typed, kind, sent):
    assert edited_body(typed, kind) == sent


def test_an_edit_round_trips_an_hl7_message():
    assert edited_body(editable_text(ADT, "hl7v2"), "hl7v2") == ADT


def test_the_diff_marks_what_was_taken_out_and_put_in():
    before = "MSH|x\nPID|1||123||Doe^Jane\nPV1|1"
    after = "MSH|x\nPID|1||123||Doe^Janet\nPV1|1\n"
    assert [(line.kind, line.text) for line in edit_diff(before, after)] == [
        ("head", "--- original"), ("head", "+++ edited"), ("hunk", "@@ -1,3 +1,3 @@"),
        ("same", " MSH|x"), ("del", "-PID|1||123||Doe^Jane"),
        ("add", "+PID|1||123||Doe^Janet"), ("same", " PV1|1")]
    assert edit_diff(before, before + "\r\n") == []
    # A removed line that starts with "--" is a removal, not a header.
    assert [line.kind for line in edit_diff("--a\nb", "b")][2:] == ["hunk", "del", "same"]


@pytest.mark.parametrize(("media_type", "kind"), [
    ("application/hl7-v2", "hl7v2"), ("x-application/hl7-v2+er7", "hl7v2"),
    ("application/fhir+json", "json"), ("application/json", "json"),
    ("text/plain", "text"), (None, "text"),
])
def test_the_kind_of_a_delivery_body_follows_its_media_type(media_type, kind):
    assert kind_of_media(media_type) == kind


def test_a_message_is_read_in_the_character_set_it_names():
    raw = "MSH|^~\\&|A|B|||20260101||ADT^A08|1|P|2.5||||||8859/1\rPID|1||1||Müller\r".encode(
        "latin-1")
    assert "Müller" in message_text(raw, is_fhir=False)
    assert "Müller" in message_text("PID|Müller".encode("latin-1"), False, "8859/1")
    assert message_text('{"n":"Zoë"}'.encode(), is_fhir=True) == '{"n":"Zoë"}'
    assert message_text(b"MSH|\xff", is_fhir=False) == "MSH|\ufffd"
    assert message_text(b"MSH|\xff", False, "no such charset") == "MSH|\ufffd"
