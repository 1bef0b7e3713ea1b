"""The FHIR sink against a real server on 127.0.0.1: a transaction Bundle posted to the
base, or each resource put at its own path in order, and OperationOutcome codes (never
their text) in the reason of a refusal."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from sqlalchemy import Engine

import engine.connectors.fhir  # noqa: F401 - registers the sink (all.py does not, yet)
from engine.connectors import ConnectorError
from engine.connectors.fhir import FhirSink
from engine.connectors.fhir.sink import RESOURCE_HEADER, fhir_sink
from engine.connectors.sink import DeliveryFailed, Outbound, sink_factory
from engine.rules.catalog_entry import Connection
from engine.rules.exception_policy import ErrorClass
from tests.engine.connectors.http_recorder import Recorder, Reply, running

PHI = "PHI-MARKER-DOE"
FHIR_JSON = "application/fhir+json"
NO_STORE = cast(Engine, None)  # FHIR sinks do not use the store
PATIENT = {"resourceType": "Patient", "id": "p1", "name": [{"family": PHI}]}
OBSERVATION = {"resourceType": "Observation", "id": "o1", "status": "final"}
REPORT = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final"}

MakeSink = Callable[..., FhirSink]


def bundle(*resources: dict[str, Any]) -> str:
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{index}", "resource": resource,
         "request": {"method": "POST", "url": resource.get("resourceType", "")}}
        for index, resource in enumerate(resources)]})


def connection(url: str, **endpoint: Any) -> Connection:
    return Connection.from_dict({
        "id": "ehr-fhir", "name": "EHR FHIR R4 endpoint", "direction": "outbound",
        "transport": "fhir", "endpoint": {"url": url, **endpoint}, "format": "fhir-r4",
    })


def outbound(body: str, media_type: str = FHIR_JSON) -> Outbound:
    return Outbound(delivery_id=3, journal_id=2, message_id="m-2", destination="ehr-fhir",
                    idempotency_key="delivery-3", media_type=media_type, body=body)


def outcome(*codes: str) -> bytes:
    return json.dumps({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": code, "diagnostics": f"Patient {PHI} is invalid"}
        for code in codes]}).encode()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with running() as server:
        yield server


@pytest.fixture
def make_sink(recorder: Recorder) -> Iterator[MakeSink]:
    """Builds sinks for the recorder's base URL and closes them all afterwards."""
    made: list[FhirSink] = []

    def make(**endpoint: Any) -> FhirSink:
        sink = FhirSink(connection(recorder.url + "/fhir/R4/", **endpoint), timeout=5.0)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


def failure(sink: FhirSink, message: Outbound) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        sink.send(message)
    assert PHI not in str(caught.value)
    return caught.value


def test_post_mode_sends_the_bundle_to_the_base(
    recorder: Recorder, make_sink: MakeSink, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SB_TEST_EHR_TOKEN", "Bearer ehr")
    body = bundle(PATIENT, OBSERVATION)
    make_sink(auth_secret_env="SB_TEST_EHR_TOKEN").send(outbound(body))
    [request] = recorder.requests
    assert (request.method, request.path, request.body) == ("POST", "/fhir/R4", body.encode())
    assert request.headers["content-type"] == FHIR_JSON
    assert request.headers["accept"] == FHIR_JSON
    assert request.headers["idempotency-key"] == "delivery-3"
    assert request.headers["authorization"] == "Bearer ehr"


def test_put_mode_puts_each_resource_at_its_path_in_order(
    recorder: Recorder, make_sink: MakeSink,
) -> None:
    recorder.script(Reply(201), Reply(200), Reply(201))
    make_sink(method="PUT").send(outbound(bundle(PATIENT, OBSERVATION, REPORT)))
    assert [(r.method, r.path, r.headers[RESOURCE_HEADER.lower()])
            for r in recorder.requests] == [
        ("PUT", "/fhir/R4/Patient/p1", "Patient/p1"),
        ("PUT", "/fhir/R4/Observation/o1", "Observation/o1"),
        ("PUT", "/fhir/R4/DiagnosticReport/r1", "DiagnosticReport/r1"),
    ]
    assert [json.loads(r.body) for r in recorder.requests] == [PATIENT, OBSERVATION, REPORT]
    assert {r.headers["idempotency-key"] for r in recorder.requests} == {"delivery-3"}
    assert recorder.connections == 1


def test_put_mode_stops_at_the_first_refusal(recorder: Recorder, make_sink: MakeSink) -> None:
    recorder.script(Reply(201), Reply(422, outcome("invalid", "required")))
    error = failure(make_sink(method="PUT"), outbound(bundle(PATIENT, OBSERVATION, REPORT)))
    assert error.error_class is ErrorClass.REJECTED
    assert "Bundle.entry[1] (Observation)" in error.reason
    assert error.reason.endswith("; OperationOutcome issue codes: invalid, required")
    assert [r.path for r in recorder.requests] == [
        "/fhir/R4/Patient/p1", "/fhir/R4/Observation/o1"]


@pytest.mark.parametrize("resource", [
    {"resourceType": "Observation", "status": "final"},
    {"id": "o1", "status": "final"},
    {"resourceType": "Observation", "id": "../Patient/p1"},
    {"resourceType": "Observation", "id": 7},
])
def test_put_mode_refuses_a_bundle_with_an_entry_it_cannot_put_before_sending(
    recorder: Recorder, make_sink: MakeSink, resource: dict[str, Any],
) -> None:
    error = failure(make_sink(method="PUT"), outbound(bundle(PATIENT, resource)))
    assert error.error_class is ErrorClass.REJECTED
    assert "Bundle.entry[1]" in error.reason
    assert "POST" in (error.hint or "")
    assert recorder.requests == []


@pytest.mark.parametrize(("body", "media_type"), [
    ('{"resourceType": "Patient", "id": "p1"}', FHIR_JSON),
    ("MSH|^~\\&|SB", FHIR_JSON),
    (bundle(PATIENT), "application/json"),
])
def test_refuses_a_delivery_that_is_not_a_fhir_bundle(
    recorder: Recorder, make_sink: MakeSink, body: str, media_type: str,
) -> None:
    error = failure(make_sink(method="PUT"), outbound(body, media_type))
    assert error.error_class is ErrorClass.VALIDATION
    assert "fhir-r4" in (error.hint or "")
    assert recorder.requests == []


@pytest.mark.parametrize(("reply", "error_class", "ending"), [
    (Reply(400, outcome("invalid", "invalid", "structure")), ErrorClass.REJECTED,
     "from ehr-fhir (127.0.0.1:{port}); OperationOutcome issue codes: invalid, structure"),
    (Reply(409, outcome("conflict")), ErrorClass.CONFLICT,
     "; OperationOutcome issue codes: conflict"),
    (Reply(422, outcome("Jane Doe", "business-rule")), ErrorClass.REJECTED,
     "; OperationOutcome issue codes: business-rule"),
    (Reply(422, f"<html>{PHI}</html>".encode()), ErrorClass.REJECTED,
     "from ehr-fhir (127.0.0.1:{port})"),
    (Reply(503, outcome("transient")), ErrorClass.TRANSPORT_ERROR,
     "; OperationOutcome issue codes: transient"),
])
def test_a_refusal_names_the_operation_outcome_codes_only(
    recorder: Recorder, make_sink: MakeSink, reply: Reply, error_class: ErrorClass,
    ending: str,
) -> None:
    recorder.script(reply)
    error = failure(make_sink(), outbound(bundle(PATIENT)))
    assert error.error_class is error_class
    assert error.reason.startswith(f"HTTP {reply.status} ")
    assert error.reason.endswith(ending.format(port=recorder.server_address[1]))


def test_registered_as_fhir() -> None:
    assert sink_factory("fhir") is fhir_sink


@pytest.mark.parametrize(("endpoint", "message"), [
    ({"url": "https://ehr.example/fhir/R4", "method": "PATCH"}, "cannot send with PATCH"),
    ({"url": "https://ehr.example/fhir/R4?_format=json"}, "has no query"),
    ({"url": "mllp://ehr.example:2575"}, "not an http or https URL"),
])
def test_refuses_endpoints_it_cannot_send_to(endpoint: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorError, match=message):
        fhir_sink(connection(**endpoint), NO_STORE)


def test_the_factory_refuses_a_connection_without_an_http_endpoint() -> None:
    folder = Connection.from_dict({
        "id": "lab-drop", "name": "Lab drop", "direction": "outbound", "transport": "file",
        "endpoint": {"directory": "/srv/drop"}, "format": "fhir-r4",
    })
    with pytest.raises(ConnectorError, match="'lab-drop' has no HTTP endpoint"):
        fhir_sink(folder, NO_STORE)
