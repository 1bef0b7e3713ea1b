"""The file sink in a temporary directory: names from the endpoint pattern, atomic and
idempotent writes, bodies in the right character set, and failures that name the
directory but never the content."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.connectors import ConnectorError
from engine.connectors.file.writer import FileWriter
from engine.connectors.sink import DeliveryFailed, Outbound, sink_factory
from engine.encoders import outbound_control_id
from engine.rules.catalog_entry import Connection, FileEndpoint
from engine.rules.exception_policy import ErrorClass

DESTINATION = "analytics-warehouse"
KEY_NAME = "msg-1_analytics-warehouse"  # the idempotency key "msg-1:analytics-warehouse"
CONTROL_ID = outbound_control_id("msg-1", DESTINATION)
JSON = '{"patient":{"gender":"female","name":"Zoë"}}'
ADT = (
    "MSH|^~\\&|SWITCHBOARD|RIVERSIDE|WAREHOUSE|DW|20261124101500||ADT^A01^ADT_A01"
    f"|{CONTROL_ID}|P|2.5.1{{msh18}}\r"
    "PID|1||MRN1^^^RIVERSIDE^MR||MÜLLER^JANE\r"
)


def outbound(message_id: str = "msg-1", *, media_type: str = "application/json",
             body: str = JSON) -> Outbound:
    return Outbound(delivery_id=1, journal_id=1, message_id=message_id,
                    destination=DESTINATION, idempotency_key=f"{message_id}:{DESTINATION}",
                    media_type=media_type, body=body)


def hl7v2(msh18: str = "") -> Outbound:
    return outbound(media_type="application/hl7-v2", body=ADT.format(msh18=msh18))


def writer(directory: Path, pattern: str = "*") -> FileWriter:
    return FileWriter(FileEndpoint(str(directory), pattern))


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def failure(sink: FileWriter, delivery: Outbound) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as raised:
        sink.send(delivery)
    return raised.value


# --- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "media_type", "name"), [
    ("*", "application/json", f"{KEY_NAME}.json"),
    ("*", "application/fhir+json", f"{KEY_NAME}.json"),
    ("*", "application/hl7-v2", f"{KEY_NAME}.hl7"),
    ("*", "text/csv; charset=utf-8", f"{KEY_NAME}.txt"),
    ("results.json", "application/json", f"{KEY_NAME}.json"),  # no placeholder: by key
    ("adt_*.dat", "application/json", f"adt_{KEY_NAME}.dat"),
    ("{control_id}.json", "application/json", f"{CONTROL_ID}.json"),
    ("{destination}-{message_id}", "application/json", f"{DESTINATION}-msg-1"),
    ("{idempotency_key}.{control_id}.out", "text/plain", f"{KEY_NAME}.{CONTROL_ID}.out"),
])
def test_the_file_appears_whole_under_the_name_the_pattern_gives(tmp_path, pattern,
                                                                 media_type, name):
    delivery = hl7v2() if "hl7" in media_type else outbound(media_type=media_type)
    writer(tmp_path, pattern).send(delivery)
    assert listing(tmp_path) == [name]  # and no temporary file left behind
    assert (tmp_path / name).read_bytes() == delivery.body.encode()


@pytest.mark.parametrize(("message_id", "name"), [
    ("../../etc/passwd", "_._.._etc_passwd"),
    ("..", "_."),
    ("", "_"),
    ("a b\\c\x00d:é", "a_b_c_d__"),
])
def test_no_value_can_name_a_file_outside_the_directory(tmp_path, message_id, name):
    directory = tmp_path / "out"
    writer(directory, "{message_id}").send(outbound(message_id))
    assert listing(tmp_path) == ["out"]
    assert listing(directory) == [name]


def test_a_retry_rewrites_the_same_file(tmp_path):
    sink = writer(tmp_path)
    sink.send(outbound(body='{"try": 1}'))
    sink.send(outbound(body='{"try": 2}'))
    assert listing(tmp_path) == [f"{KEY_NAME}.json"]
    assert (tmp_path / f"{KEY_NAME}.json").read_text() == '{"try": 2}'


def test_each_delivery_gets_its_own_file(tmp_path):
    sink = writer(tmp_path, "{control_id}.json")
    sink.send(outbound("msg-1"))
    sink.send(outbound("msg-2"))
    assert listing(tmp_path) == sorted(
        f"{outbound_control_id(message_id, DESTINATION)}.json"
        for message_id in ("msg-1", "msg-2"))


@pytest.mark.parametrize(("pattern", "problem"), [
    ("{patient_name}.hl7", "unknown placeholder {patient_name}"),
    ("{message_id.__class__}", "unknown placeholder {message_id.__class__}"),
    ("{message_id[0]}", "unknown placeholder {message_id[0]}"),
    ("{}.hl7", "unknown placeholder {}"),
    ("{control_id:>30}", "placeholder {control_id} cannot take a format"),
    ("{control_id!r}", "placeholder {control_id} cannot take a format"),
    ("{control_id.hl7", "has an unmatched brace"),
    ("../{control_id}", "not safe in a file name"),
    ("sub/{control_id}", "not safe in a file name"),
    ("{control_id} copy", "not safe in a file name"),
    (".{control_id}", "names hidden files"),
])
def test_a_pattern_the_writer_cannot_fill_safely_is_refused_at_construction(tmp_path,
                                                                            pattern, problem):
    with pytest.raises(ConnectorError, match=problem.replace("{", r"\{").replace("[", r"\[")):
        writer(tmp_path, pattern)


# --- directory -------------------------------------------------------------------------


def test_a_missing_directory_is_created_at_the_first_send(tmp_path):
    directory = tmp_path / "outbox" / "analytics"
    sink = writer(directory)
    assert not directory.exists()  # building the sink does no I/O
    sink.send(outbound())
    assert listing(directory) == [f"{KEY_NAME}.json"]


def test_a_directory_that_cannot_be_made_is_a_transport_error(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    directory = tmp_path / "afile" / "sub"
    failed = failure(writer(directory), outbound())
    assert failed.error_class is ErrorClass.TRANSPORT_ERROR
    assert failed.reason == f"{DESTINATION}: cannot write into {directory}: Not a directory"
    assert "Zoë" not in str(failed)


def test_a_failed_rename_leaves_no_temporary_file(tmp_path):
    (tmp_path / f"{KEY_NAME}.json").mkdir()  # the final name is taken by a directory
    failed = failure(writer(tmp_path), outbound())
    assert failed.error_class is ErrorClass.TRANSPORT_ERROR
    assert failed.reason.startswith(f"{DESTINATION}: cannot write into {tmp_path}: ")
    assert listing(tmp_path) == [f"{KEY_NAME}.json"]


# --- bytes -----------------------------------------------------------------------------


@pytest.mark.parametrize(("delivery", "encoding"), [
    (hl7v2("||||||8859/1"), "iso8859-1"),
    (hl7v2("||||||UNICODE UTF-8"), "utf-8"),
    (hl7v2(), "utf-8"),
    (outbound(), "utf-8"),
])
def test_the_body_is_written_in_its_character_set(tmp_path, delivery, encoding):
    sink = writer(tmp_path, "{control_id}")
    sink.send(delivery)
    assert (tmp_path / CONTROL_ID).read_bytes() == delivery.body.encode(encoding)


@pytest.mark.parametrize(("delivery", "reason"), [
    (hl7v2("||||||ASCII"),
     "a value holds a character that MSH-18's character set (ascii) cannot represent"),
    (replace(hl7v2(), body="PID|1||MRN1||MÜLLER^JANE\r"), "the body is not an HL7 v2 message"),
    (outbound(body='{"name": "\udc80"}'), "the body holds a character UTF-8 cannot represent"),
])
def test_a_body_that_cannot_be_written_is_a_validation_failure(tmp_path, delivery, reason):
    failed = failure(writer(tmp_path), delivery)
    assert (failed.error_class, failed.reason) == (ErrorClass.VALIDATION,
                                                   f"{DESTINATION}: {reason}")
    assert "MÜLLER" not in str(failed)
    assert listing(tmp_path) == []


# --- registration ----------------------------------------------------------------------


def test_the_factory_builds_a_writer_from_the_catalog_entry(tmp_path):
    connection = Connection.from_dict({
        "id": DESTINATION, "name": "Analytics warehouse", "direction": "outbound",
        "transport": "file", "format": "canonical-json",
        "endpoint": {"directory": str(tmp_path), "pattern": "{control_id}.json"},
    })
    sink = sink_factory("file")(connection, None)
    sink.send(outbound())
    sink.close()
    sink.close()
    assert listing(tmp_path) == [f"{CONTROL_ID}.json"]


def test_the_factory_refuses_a_connection_without_a_file_endpoint():
    connection = Connection.from_dict({
        "id": "lab-system", "name": "Lab", "direction": "outbound", "transport": "mllp",
        "format": "hl7v2", "endpoint": {"host": "127.0.0.1", "port": 6661},
    })
    with pytest.raises(ConnectorError, match="'lab-system' has no file endpoint"):
        sink_factory("file")(connection, None)
