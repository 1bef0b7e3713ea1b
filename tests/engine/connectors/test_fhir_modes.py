"""The FHIR destination's modes against a real FHIR server (Medplum, tests/medplum_fhir.py):
a transaction, conditional updates on identifier, or a message to $process-message; the
same message delivered twice leaves nothing doubled, for the whole HL7 v2 corpus; and a
refusal ends as an exception item carrying the OperationOutcome, whose free text never
reaches the log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from engine.connectors.fhir import FhirSink, modes
from engine.connectors.fhir.operation_outcome import issues, log_words
from engine.connectors.sink import DeliveryFailed, Outbound
from engine.delivery_workers import DeliveryWorker
from engine.fhir import encode_bundle
from engine.ingest import Ingestor
from engine.journal import Journal, Received
from engine.log_format import JsonFormatter
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.rules.catalog_entry import CatalogError, Connection, FhirMode
from engine.rules.exception_policy import ErrorClass
from engine.store.models import Delivery, ExceptionItem
from tests.delivery_config import SINK, delivery_config
from tests.delivery_config import update as adt_update
from tests.engine.fhir.corpus import convert
from tests.medplum_fhir import MedplumServer
from tests.samples import CORPUS, CORPUS_FILES

FHIR_JSON = "application/fhir+json"
MODES = [FhirMode.TRANSACTION, FhirMode.CONDITIONAL_UPDATE]
# Refused by the server (it checks FHIR's invariants on every write): none. A refusal
# is fixed in the encoder, never accepted here.
KNOWN_REFUSED: dict[str, tuple[str, tuple[str, ...]]] = {}
FEW = ["fhir-converter/ADT-A01-01.hl7", "fhir-converter/ORU-R01-01.hl7",
       "fhir-converter/VXU-V04-01.hl7"]
MakeSink = Callable[..., FhirSink]


def connection(url: str, **endpoint: Any) -> Connection:
    return Connection.from_dict({
        "id": "ehr-fhir", "name": "EHR FHIR R4 endpoint", "direction": "outbound",
        "transport": "fhir", "endpoint": {"url": url, **endpoint}, "format": "fhir-r4"})


def outbound(bundle: dict[str, Any], delivery_id: int = 3) -> Outbound:
    return Outbound(delivery_id=delivery_id, journal_id=2, message_id="m-2",
                    destination="ehr-fhir", idempotency_key=f"delivery-{delivery_id}",
                    media_type=FHIR_JSON, body=json.dumps(bundle))


def corpus_bundle(path: Path) -> dict[str, Any]:
    return encode_bundle(convert(path), f"{path.stem}:ehr-fhir")


@pytest.fixture
def make_sink(fhir_store: MedplumServer) -> Iterator[MakeSink]:
    made: list[FhirSink] = []

    def make(**endpoint: Any) -> FhirSink:
        made.append(FhirSink(connection(fhir_store.base_url, **endpoint), timeout=60.0))
        return made[-1]

    yield make
    for sink in made:
        sink.close()


def patient_identifier(bundle: dict[str, Any]) -> str:
    """A search for the Bundle's Patient: ``system|value`` of its first identifier with
    a system, or the value of its first identifier when none has one."""
    [patient] = [entry["resource"] for entry in bundle["entry"]
                 if entry["resource"]["resourceType"] == "Patient"]
    first = next((i for i in patient["identifier"] if i.get("system")),
                 patient["identifier"][0])
    return f"{first['system']}|{first['value']}" if "system" in first else first["value"]


# -- the modes' Bundles --------------------------------------------------------------------

PATIENT = {"resourceType": "Patient",
           "identifier": [{"value": "no-system"}, {"system": "urn:oid:1.2.3", "value": "A|1,2"}]}
ENCOUNTER = {"resourceType": "Encounter", "id": "e1", "status": "unknown",
             "identifier": [{"system": "urn:oid:1.2.4", "value": "V1"}]}
OBSERVATION = {"resourceType": "Observation", "id": "o1", "status": "final"}
HEADER = {"resourceType": "MessageHeader", "id": "h1", "eventUri": "urn:x"}


def transaction(*entries: tuple[str, dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "identifier": {"system": "urn:ietf:rfc:3986",
                                                     "value": "urn:uuid:b"},
            "type": "transaction", "entry": [
                {"fullUrl": url, "resource": resource, "request": request}
                for url, resource, request in entries]}


SAMPLE = transaction(
    ("urn:uuid:00000000-0000-5000-8000-000000000001", PATIENT,
     {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:oid:1.2.3|A\\|1\\,2"}),
    ("urn:uuid:e1", ENCOUNTER, {"method": "PUT", "url": "Encounter/e1"}),
    ("urn:uuid:o1", OBSERVATION, {"method": "PUT", "url": "Observation/o1"}),
    ("urn:uuid:h1", HEADER, {"method": "PUT", "url": "MessageHeader/h1"}),
)


def test_conditional_update_puts_each_identified_resource_by_its_identifier() -> None:
    reshaped = modes.conditional_update(SAMPLE)
    assert [entry["request"] for entry in reshaped["entry"]] == [
        {"method": "PUT", "url": "Patient?identifier=urn:oid:1.2.3|A%5C%7C1%5C%2C2"},
        {"method": "PUT", "url": "Encounter?identifier=urn:oid:1.2.4|V1"},
        {"method": "PUT", "url": "Observation/o1"},
        {"method": "PUT", "url": "MessageHeader/h1"},
    ]
    # An upsert carries no id; references still name the fullUrls.
    assert ["id" in entry["resource"] for entry in reshaped["entry"]] == [
        False, False, True, True]
    assert [e["fullUrl"] for e in reshaped["entry"]] == [e["fullUrl"] for e in SAMPLE["entry"]]
    assert reshaped["type"] == "transaction"
    assert SAMPLE["entry"][1]["resource"]["id"] == "e1"  # the input is left alone


def test_conditional_update_puts_two_entries_with_one_identifier_at_their_ids() -> None:
    twin = {**ENCOUNTER, "id": "e2"}
    reshaped = modes.conditional_update(transaction(
        ("urn:uuid:e1", ENCOUNTER, {}), ("urn:uuid:e2", twin, {})))
    assert [entry["request"]["url"] for entry in reshaped["entry"]] == [
        "Encounter/e1", "Encounter/e2"]


def test_a_message_has_its_header_first_and_no_requests() -> None:
    reshaped = modes.message(SAMPLE)
    assert reshaped["type"] == "message"
    assert reshaped["identifier"] == SAMPLE["identifier"]
    assert [entry["resource"]["resourceType"] for entry in reshaped["entry"]] == [
        "MessageHeader", "Patient", "Encounter", "Observation"]
    assert all("request" not in entry for entry in reshaped["entry"])
    # The conditionally created Patient takes an id made from its identifier: the same
    # in every message, so neither a repeat nor the next message makes another.
    patient_id = reshaped["entry"][1]["resource"]["id"]
    another = transaction(("urn:uuid:00000000-0000-5000-8000-000000000009", PATIENT, {}),
                          ("urn:uuid:h2", {**HEADER, "id": "h2"}, {}))
    assert modes.message(another)["entry"][1]["resource"]["id"] == patient_id
    assert patient_id != "00000000-0000-5000-8000-000000000001"
    assert reshaped["entry"][2]["resource"]["id"] == "e1"


def test_a_bundle_without_a_header_is_no_message() -> None:
    with pytest.raises(modes.ModeError, match="no MessageHeader"):
        modes.message(transaction(("urn:uuid:o1", OBSERVATION, {})))


def test_only_element_paths_codes_and_severities_are_free_to_log() -> None:
    found = issues(json.dumps({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "code-invalid", "diagnostics": f"{PHI} is no gender",
         "details": {"text": f"Value {PHI}"}, "expression": [
             "Bundle.entry[2].resource.gender", f"Patient.name.where(family='{PHI}')"]},
        {"severity": PHI, "code": "Not A Code", "expression": "Patient.gender"},
    ]}).encode())
    assert log_words(found) == "error code-invalid at Bundle.entry[2].resource.gender; ? ?"
    assert found[0].stored() == {
        "severity": "error", "code": "code-invalid", "diagnostics": f"{PHI} is no gender",
        "details": f"Value {PHI}", "expression": ["Bundle.entry[2].resource.gender"]}


# -- the catalog option ----------------------------------------------------------------------

@pytest.mark.parametrize("mode", list(FhirMode))
def test_the_catalog_names_the_mode(mode: FhirMode) -> None:
    assert connection("https://ehr.example/fhir", mode=str(mode)).endpoint.mode is mode


@pytest.mark.parametrize(("transport", "endpoint", "message"), [
    ("fhir", {"mode": "batch"}, "endpoint.mode: 'batch' is not one of transaction, "
                                "conditional-update, message"),
    ("fhir", {"mode": "message", "method": "PUT"}, "method PUT puts each resource"),
    ("http", {"mode": "message"}, "unknown key 'mode'"),
])
def test_the_catalog_refuses_a_mode_it_cannot_use(
    transport: str, endpoint: dict[str, Any], message: str,
) -> None:
    entry = {"id": "x", "name": "X", "direction": "outbound", "transport": transport,
             "endpoint": {"url": "https://ehr.example/fhir", **endpoint}, "format": "fhir-r4"}
    with pytest.raises(CatalogError, match=message):
        Connection.from_dict(entry)


SCHEMA = Draft202012Validator(json.loads(
    (Path(__file__).resolve().parents[3] / "rules/schema/connection.schema.json").read_text()))


@pytest.mark.parametrize(("transport", "endpoint", "valid"), [
    ("fhir", {"mode": "conditional-update"}, True),
    ("fhir", {"mode": "message", "method": "POST"}, True),
    ("fhir", {"method": "PUT"}, True),
    ("fhir", {"mode": "batch"}, False),
    ("fhir", {"mode": "transaction", "method": "PUT"}, False),
    ("http", {"mode": "transaction"}, False),
])
def test_the_schema_takes_a_mode_for_fhir_posts_only(
    transport: str, endpoint: dict[str, Any], valid: bool,
) -> None:
    entry = {"id": "x", "name": "X", "direction": "outbound", "transport": transport,
             "endpoint": {"url": "https://ehr.example/fhir", **endpoint}, "format": "fhir-r4"}
    assert SCHEMA.is_valid(entry) is valid


# -- against the server ----------------------------------------------------------------------

@pytest.mark.parametrize("mode", list(FhirMode))
def test_a_message_delivered_twice_is_found_once(
    fhir_store: MedplumServer, make_sink: MakeSink, mode: FhirMode,
) -> None:
    bundle = corpus_bundle(CORPUS / FEW[0])
    sink = make_sink(mode=str(mode))
    sink.send(outbound(bundle))
    identifier = patient_identifier(bundle)
    [found] = fhir_store.search("Patient", identifier=identifier)
    counts = fhir_store.counts()
    sink.send(outbound(bundle))
    assert [p["id"] for p in fhir_store.search("Patient", identifier=identifier)] == [
        found["id"]]
    assert fhir_store.counts() == counts
    # What was sent is what is stored, its references resolved to the server's ids.
    [encounter] = fhir_store.search("Encounter", subject=f"Patient/{found['id']}")
    assert encounter["subject"] == {"reference": f"Patient/{found['id']}"}


@pytest.mark.parametrize("mode", MODES)
def test_the_corpus_delivered_twice_changes_no_count(
    fhir_store: MedplumServer, make_sink: MakeSink, mode: FhirMode,
) -> None:
    """Acceptance: the whole corpus in each mode, then again; no type's count moves."""
    sink = make_sink(mode=str(mode))
    bundles = [(path, corpus_bundle(path)) for path in CORPUS_FILES]

    def deliver() -> dict[str, tuple[str, tuple[str, ...]]]:
        refused = {}
        for number, (path, bundle) in enumerate(bundles):
            try:
                sink.send(outbound(bundle, number))
            except DeliveryFailed as failed:
                [issue] = failed.detail["operation_outcome"]["issue"]
                refused[path.name] = (issue["code"], tuple(issue["expression"]))
        return refused

    assert deliver() == KNOWN_REFUSED
    first = fhir_store.counts()
    assert deliver() == KNOWN_REFUSED
    assert fhir_store.counts() == first
    assert sum(first.values()) > 900  # the corpus is on the server, not a few of it
    assert {"Patient", "Encounter", "Observation", "Condition", "Immunization",
            "Coverage", "Practitioner"} <= set(first)


def test_a_few_messages_processed_as_messages_twice_change_no_count(
    fhir_store: MedplumServer, make_sink: MakeSink,
) -> None:
    sink = make_sink(mode="message")
    bundles = [corpus_bundle(CORPUS / name) for name in FEW]
    for bundle in bundles:
        sink.send(outbound(bundle))
    first = fhir_store.counts()
    for bundle in bundles:
        sink.send(outbound(bundle))
    assert fhir_store.counts() == first
    assert "MessageHeader" not in first  # $process-message acts on the header, keeps none
    for bundle in bundles:
        assert len(fhir_store.search("Patient", identifier=patient_identifier(bundle))) == 1


def test_a_record_without_a_message_header_cannot_go_as_a_message(
    fhir_store: MedplumServer, make_sink: MakeSink,
) -> None:
    bundle = encode_bundle({"results": [{"code": "8867-4", "value": "72"}]}, "m-1")
    with pytest.raises(DeliveryFailed) as caught:
        make_sink(mode="message").send(outbound(bundle))
    assert caught.value.error_class is ErrorClass.REJECTED
    assert "no MessageHeader" in caught.value.reason
    assert "transaction mode" in (caught.value.hint or "")
    make_sink().send(outbound(bundle))  # the same Bundle goes as a transaction
    assert fhir_store.counts() == {"Observation": 1}


# -- a refusal, through the outbox -------------------------------------------------------------

PHI = "PHI-MARKER-DOE"


def fhir_destination(folder: Path, base_url: str, mode: str) -> Path:
    """The delivery tests' configuration with its sink a FHIR server, tried once."""
    delivery_config(folder, "http://127.0.0.1:9/unused", policy={"max_attempts": 1})
    path = folder / "catalog" / "connections" / f"{SINK}.yaml"
    entry = yaml.safe_load(path.read_text())
    entry.update(transport="fhir", format="fhir-r4",
                 endpoint={"url": base_url, "mode": mode})
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    return folder


@pytest.mark.parametrize("mode", list(FhirMode))
def test_a_refusal_is_an_exception_item_carrying_the_operation_outcome(
    fhir_store: MedplumServer, sqlite_engine: Engine, tmp_path: Path,
    caplog: pytest.LogCaptureFixture, mode: FhirMode,
) -> None:
    bootstrap(sqlite_engine,
              fhir_destination(tmp_path / "config", fhir_store.base_url, str(mode)))
    Ingestor(Journal(sqlite_engine)).ingest(Received(adt_update("C1", "MRN1"), "ehr-adt-feed"))
    assert Pipeline(sqlite_engine).run_once()
    with Session(sqlite_engine) as session:
        delivery = session.scalars(select(Delivery)).one()
        bundle = json.loads(delivery.body or "")
    # A Patient.gender the server refuses, as a defect in a mapping could make it.
    [patient] = [e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "Patient"]
    patient["gender"] = PHI
    with sqlite_engine.begin() as connection:
        connection.execute(update(Delivery).values(body=json.dumps(bundle)))
    worker = DeliveryWorker(sqlite_engine, batch=10)
    try:
        with caplog.at_level(logging.INFO):
            assert worker.run_once()
    finally:
        worker.close()

    with Session(sqlite_engine) as session:
        item = session.scalars(select(ExceptionItem)).one()
        delivery = session.scalars(select(Delivery)).one()
    assert (item.error_class, delivery.status) == (ErrorClass.REJECTED, "dead")
    [issue] = item.detail["operation_outcome"]["issue"]
    assert item.detail["operation_outcome"]["status"] == 400
    assert (issue["severity"], issue["code"]) == ("error", "code-invalid")
    assert issue["expression"][0].endswith("gender")
    assert PHI in json.dumps(issue)  # the server's words, kept with the item
    assert PHI not in item.summary and PHI not in (delivery.last_error or "")
    assert "OperationOutcome issue codes: code-invalid at " in item.summary
    lines = [JsonFormatter().format(record) for record in caplog.records]
    [refusal] = [json.loads(line) for line in lines if "OperationOutcome" in line]
    assert refusal["issues"] == f"error code-invalid at {issue['expression'][0]}"
    assert (refusal["connection"], refusal["mode"]) == (SINK, str(mode))
    assert not [line for line in lines if PHI in line]
    assert fhir_store.counts() == {}
