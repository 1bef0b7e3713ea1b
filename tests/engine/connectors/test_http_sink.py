"""The HTTP sink against a real server on 127.0.0.1: what it sends, keep-alive and the
transparent resend on a connection the server closed, and what each failure means."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from sqlalchemy import Engine

import engine.connectors.http  # noqa: F401 - registers the sink (all.py does not, yet)
from engine.connectors import ConnectorError
from engine.connectors.http import HttpSink
from engine.connectors.http.sink import http_sink
from engine.connectors.sink import DeliveryFailed, Outbound, sink_factory
from engine.rules.catalog_entry import Connection
from engine.rules.exception_policy import ErrorClass
from tests.engine.connectors.http_recorder import Recorder, Reply, Then, running
from tests.ports import free_port
from tests.waiting import wait_until

PHI = "PHI-MARKER-DOE^JANE"
BODY = json.dumps({"patient": {"names": [{"family": PHI}]}})
NO_STORE = cast(Engine, None)  # HTTP sinks do not use the store

MakeSink = Callable[..., HttpSink]


def connection(url: str, **endpoint: Any) -> Connection:
    return Connection.from_dict({
        "id": "lab-webhook", "name": "Lab webhook", "direction": "outbound",
        "transport": "http", "endpoint": {"url": url, **endpoint}, "format": "canonical-json",
    })


def outbound(key: str = "delivery-1", body: str = BODY) -> Outbound:
    return Outbound(delivery_id=1, journal_id=1, message_id="m-1", destination="lab-webhook",
                    idempotency_key=key, media_type="application/json", body=body)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with running() as server:
        yield server


@pytest.fixture
def make_sink(recorder: Recorder) -> Iterator[MakeSink]:
    """Builds sinks for the recorder (or another URL) and closes them all afterwards."""
    made: list[HttpSink] = []

    def make(url: str | None = None, timeout: float = 5.0, **endpoint: Any) -> HttpSink:
        sink = HttpSink(connection(url or recorder.url + "/hooks/lab", **endpoint),
                        timeout=timeout)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


def failure(sink: HttpSink, message: Outbound | None = None) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        sink.send(message or outbound())
    assert PHI not in str(caught.value)
    return caught.value


def test_delivers_the_body_with_its_type_key_and_catalog_headers(
    recorder: Recorder, make_sink: MakeSink, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SB_TEST_TOKEN", "Bearer t0ken")
    monkeypatch.setenv("SB_TEST_API_KEY", "key-1")
    sink = make_sink(recorder.url + "/hooks/lab?tenant=7", auth_secret_env="SB_TEST_TOKEN",
                     headers={"X-Api-Key": {"secret_env": "SB_TEST_API_KEY"}})
    sink.send(outbound())
    [request] = recorder.requests
    assert (request.method, request.path, request.body) == (
        "POST", "/hooks/lab?tenant=7", BODY.encode())
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "delivery-1"
    assert request.headers["authorization"] == "Bearer t0ken"
    assert request.headers["x-api-key"] == "key-1"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_sends_with_the_endpoints_method(
    recorder: Recorder, make_sink: MakeSink, method: str,
) -> None:
    make_sink(method=method).send(outbound())
    assert [request.method for request in recorder.requests] == [method]


def test_a_missing_secret_variable_fails_before_sending_and_names_the_variable(
    recorder: Recorder, make_sink: MakeSink, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SB_TEST_TOKEN", raising=False)
    error = failure(make_sink(auth_secret_env="SB_TEST_TOKEN"))
    # Issue 14, item 4: not an outage to retry for ten minutes, but a configuration
    # error a person must fix.
    assert error.error_class is ErrorClass.CONFIGURATION
    assert "SB_TEST_TOKEN" in error.reason and "SB_TEST_TOKEN" in (error.hint or "")
    assert recorder.requests == []


def test_a_secret_with_a_line_break_is_refused_without_showing_it(
    recorder: Recorder, make_sink: MakeSink, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SB_TEST_TOKEN", "Bearer s3cret\r\nX-Evil: 1")
    error = failure(make_sink(auth_secret_env="SB_TEST_TOKEN"))
    assert error.error_class is ErrorClass.CONFIGURATION
    assert "SB_TEST_TOKEN" in error.reason and "s3cret" not in str(error)
    assert recorder.requests == []


def test_keeps_one_connection_for_successive_deliveries(
    recorder: Recorder, make_sink: MakeSink,
) -> None:
    sink = make_sink()
    sink.send(outbound("delivery-1"))
    sink.send(outbound("delivery-2"))
    assert [r.headers["idempotency-key"] for r in recorder.requests] == [
        "delivery-1", "delivery-2"]
    assert recorder.connections == 1


def test_resends_once_when_the_server_closed_the_kept_connection(
    recorder: Recorder, make_sink: MakeSink,
) -> None:
    recorder.script(Reply(then=Then.ANSWER_AND_DROP))
    sink = make_sink()
    sink.send(outbound("delivery-1"))
    recorder.wait_closed(1)
    sink.send(outbound("delivery-2"))
    assert [(r.headers["idempotency-key"], r.connection) for r in recorder.requests] == [
        ("delivery-1", 1), ("delivery-2", 2)]


def test_a_new_connection_closed_without_an_answer_is_not_resent(
    recorder: Recorder, make_sink: MakeSink,
) -> None:
    recorder.script(Reply(then=Then.DROP))
    error = failure(make_sink())
    assert error.error_class is ErrorClass.TRANSPORT_ERROR
    assert "closed the connection without answering" in error.reason
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(("status", "error_class"), [
    (500, ErrorClass.TRANSPORT_ERROR),
    (503, ErrorClass.TRANSPORT_ERROR),
    (429, ErrorClass.TRANSPORT_ERROR),
    (408, ErrorClass.TRANSPORT_ERROR),
    (400, ErrorClass.REJECTED),
    (401, ErrorClass.REJECTED),
    (422, ErrorClass.REJECTED),
    (301, ErrorClass.REJECTED),
    (409, ErrorClass.CONFLICT),
])
def test_a_status_maps_to_an_error_class_without_the_bodies(
    recorder: Recorder, make_sink: MakeSink, status: int, error_class: ErrorClass,
) -> None:
    recorder.script(Reply(status, body=f"echo: {PHI}".encode()))
    error = failure(make_sink())
    assert error.error_class is error_class
    assert error.reason.startswith(f"HTTP {status} ")
    assert f"from lab-webhook (127.0.0.1:{recorder.server_address[1]})" in error.reason
    assert PHI not in (error.hint or "")


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(
    recorder: Recorder, make_sink: MakeSink, status: int,
) -> None:
    recorder.script(Reply(status))
    make_sink().send(outbound())


@pytest.mark.parametrize(("size", "connections"), [
    (200 * 1024, 1),  # drained: the connection carries the next delivery
    (2 * 1024 * 1024, 2),  # too long to drain: closed, and the next one connects again
])
def test_drains_an_answer_of_bounded_length_to_keep_the_connection(
    recorder: Recorder, make_sink: MakeSink, size: int, connections: int,
) -> None:
    recorder.script(Reply(200, body=b"x" * size))
    sink = make_sink()
    sink.send(outbound("delivery-1"))
    sink.send(outbound("delivery-2"))
    assert recorder.connections == connections


def test_a_server_that_never_answers_is_a_timeout(
    recorder: Recorder, make_sink: MakeSink,
) -> None:
    recorder.script(Reply(then=Then.HANG))
    sink = make_sink(timeout=0.5)
    error = failure(sink)
    assert error.error_class is ErrorClass.TIMEOUT
    assert "within 0.5 s" in error.reason
    # The sink gave up by itself: the server has not answered, it still holds the request.
    wait_until(lambda: recorder.hold.held == 1, what="the request to be held")
    sink.send(outbound("delivery-2"))  # the next delivery opens a new connection
    assert recorder.connections == 2


def test_nothing_listening_is_a_transport_error(make_sink: MakeSink) -> None:
    port = free_port()
    error = failure(make_sink(f"http://127.0.0.1:{port}/hooks"))
    assert error.error_class is ErrorClass.TRANSPORT_ERROR
    assert error.reason.startswith(f"cannot connect to lab-webhook (127.0.0.1:{port})")


def test_registered_as_http() -> None:
    assert sink_factory("http") is http_sink


def test_the_factory_builds_an_unconnected_sink(recorder: Recorder) -> None:
    sink = http_sink(connection(recorder.url), NO_STORE)
    sink.close()
    assert recorder.connections == 0


def test_the_factory_refuses_a_connection_without_an_http_endpoint() -> None:
    mllp = Connection.from_dict({
        "id": "lab-out", "name": "Lab orders", "direction": "outbound", "transport": "mllp",
        "endpoint": {"host": "127.0.0.1", "port": 2575}, "format": "hl7v2",
    })
    with pytest.raises(ConnectorError, match="'lab-out' has no HTTP endpoint"):
        http_sink(mllp, NO_STORE)


@pytest.mark.parametrize(("url", "headers", "message"), [
    ("ftp://lab.example/in", {}, "not an http or https URL"),
    ("lab.example/in", {}, "not an http or https URL"),
    ("http://lab.example:99999/in", {}, "not an http or https URL"),
    ("https://svc:s3cret@lab.example/in", {}, "holds credentials"),
    ("https://lab.example/in box", {}, "not an http or https URL"),
    ("https://lab.example/réception", {}, "not an http or https URL"),
    ("https://lab.example/in", {"Content-Type": {"secret_env": "X"}}, "set by the sink"),
    ("https://lab.example/in", {"Idempotency-Key": {"secret_env": "X"}}, "set by the sink"),
    ("https://lab.example/in", {"X Api": {"secret_env": "X"}}, "not an HTTP header name"),
])
def test_refuses_endpoints_it_cannot_send_to(
    url: str, headers: dict[str, Any], message: str,
) -> None:
    with pytest.raises(ConnectorError, match=message):
        HttpSink(connection(url, headers=headers))


def test_close_is_safe_twice_and_before_any_send(
    recorder: Recorder, make_sink: MakeSink,
) -> None:
    sink = make_sink()
    sink.close()
    sink.send(outbound())
    sink.close()
    sink.close()
