"""The HTTP sink (``http``): each delivery is one request to the catalog entry's URL,
with the body as encoded, its media type, and the delivery's Idempotency-Key."""

from __future__ import annotations

from sqlalchemy import Engine

from engine.connectors import ConnectorError
from engine.connectors.http.client import HttpClient, Target
from engine.connectors.http.headers import catalog_headers, check_header_names
from engine.connectors.http.outcome import raise_for_status
from engine.connectors.sink import IDEMPOTENCY_HEADER, Outbound
from engine.rules.catalog_entry import Connection, HttpEndpoint

__all__ = ["HttpSink", "http_endpoint", "http_sink"]


def http_endpoint(connection: Connection, sink: str) -> HttpEndpoint:
    """The connection's HTTP endpoint, with header names checked; raises ConnectorError
    when the connection has none."""
    endpoint = connection.endpoint
    if not isinstance(endpoint, HttpEndpoint):
        raise ConnectorError(
            f"connection {connection.id!r} has no HTTP endpoint, so it cannot use the "
            f"{sink} sink", hint="Give its endpoint a url, or change its transport")
    check_header_names(endpoint, connection.id)
    return endpoint


class HttpSink:
    """Sends each delivery with the endpoint's method over one kept connection; waits
    up to ``timeout`` seconds for the connect and for each read of the answer."""

    def __init__(self, connection: Connection, *, timeout: float = 30.0) -> None:
        self.endpoint = http_endpoint(connection, "http")
        self.target = Target.parse(self.endpoint.url, connection.id)
        self.where = f"{connection.id} ({self.target.authority})"
        self._client = HttpClient(self.target, timeout, self.where)

    def send(self, outbound: Outbound) -> None:
        """Deliver ``outbound``; returns once the destination answered 2xx."""
        headers = {
            **catalog_headers(self.endpoint, self.where),
            "Content-Type": outbound.media_type,
            IDEMPOTENCY_HEADER: outbound.idempotency_key,
        }
        response = self._client.request(
            self.endpoint.method, self.target.path, outbound.body.encode(), headers)
        raise_for_status(response, self.where)

    def close(self) -> None:
        """Close the kept connection; never raises."""
        self._client.close()


def http_sink(connection: Connection, _store: Engine) -> HttpSink:
    """The ``http`` sink factory: a sink for the connection's URL, unconnected."""
    return HttpSink(connection)
