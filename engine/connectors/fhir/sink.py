"""The FHIR REST sink (``fhir``): the catalog URL is the server's base URL.

With method POST (the default) the delivery's transaction Bundle is posted to the base
and the server applies it all or nothing. With PUT, for servers without transactions,
each entry's resource is put at ``<base>/<resourceType>/<id>`` in Bundle order,
stopping at the first refusal; every request carries the delivery's Idempotency-Key and
names its resource in ``X-Switchboard-Resource``, so a receiver dedupes per resource.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine

from engine.connectors import ConnectorError
from engine.connectors.fhir.operation_outcome import issue_codes
from engine.connectors.http.client import HttpClient, Target
from engine.connectors.http.headers import catalog_headers
from engine.connectors.http.outcome import error_class, raise_for_status
from engine.connectors.http.sink import http_endpoint
from engine.connectors.sink import IDEMPOTENCY_HEADER, DeliveryFailed, Outbound
from engine.encoders import FHIR_MEDIA_TYPE
from engine.rules.catalog_entry import Connection
from engine.rules.exception_policy import ErrorClass

__all__ = ["RESOURCE_HEADER", "FhirSink", "fhir_sink"]

RESOURCE_HEADER: Final = "X-Switchboard-Resource"
_MODES: Final = ("POST", "PUT")
# A resource's type and id go into the request path, so only FHIR's own syntax is sent.
_TYPE: Final = re.compile(r"[A-Z][A-Za-z]{0,63}")
_ID: Final = re.compile(r"[A-Za-z0-9.-]{1,64}")
_PUT_HINT: Final = ("Use method POST (a transaction Bundle) for this destination, or a "
                    "mapping that gives every resource its id on the server")


@dataclass(frozen=True)
class _Put:
    """One resource of a Bundle, as PUT mode sends it."""

    index: int
    resource_type: str
    path: str
    body: bytes


class FhirSink:
    """Sends each delivery's Bundle to one FHIR server over one kept connection; waits
    up to ``timeout`` seconds for the connect and for each read of an answer."""

    def __init__(self, connection: Connection, *, timeout: float = 30.0) -> None:
        self.endpoint = http_endpoint(connection, "fhir")
        if self.endpoint.method not in _MODES:
            raise ConnectorError(
                f"{connection.id}: a FHIR sink cannot send with {self.endpoint.method}",
                hint="Use POST to send the transaction Bundle, or PUT to put each resource")
        target = Target.parse(self.endpoint.url, connection.id)
        if "?" in target.path:
            raise ConnectorError(f"{connection.id}: a FHIR base URL has no query",
                                 hint="Write the base alone, e.g. https://host/fhir/R4")
        self.base = target.path.rstrip("/")
        self.where = f"{connection.id} ({target.authority})"
        self._client = HttpClient(target, timeout, self.where)

    def send(self, outbound: Outbound) -> None:
        """Deliver the Bundle; returns once the server took all of it."""
        _check_media_type(outbound, self.where)
        headers = {
            **catalog_headers(self.endpoint, self.where),
            "Content-Type": FHIR_MEDIA_TYPE,
            "Accept": FHIR_MEDIA_TYPE,
            IDEMPOTENCY_HEADER: outbound.idempotency_key,
        }
        if self.endpoint.method == "POST":
            self._request("POST", self.base or "/", outbound.body.encode(), headers, "")
            return
        for put in _puts(outbound.body, self.where):
            self._request("PUT", f"{self.base}/{put.path}", put.body,
                          {**headers, RESOURCE_HEADER: put.path},
                          f" for Bundle.entry[{put.index}] ({put.resource_type})")

    def close(self) -> None:
        """Close the kept connection; never raises."""
        self._client.close()

    def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str], detail: str
    ) -> None:
        response = self._client.request(method, path, body, headers)
        codes = issue_codes(response.body) if error_class(response.status) else []
        if codes:
            detail += f"; OperationOutcome issue codes: {', '.join(codes)}"
        raise_for_status(response, self.where, detail)


def _check_media_type(outbound: Outbound, where: str) -> None:
    if outbound.media_type.split(";")[0].strip() != FHIR_MEDIA_TYPE:
        raise DeliveryFailed(
            ErrorClass.VALIDATION,
            f"{where}: the delivery is {outbound.media_type}, not a FHIR Bundle",
            hint="Set the catalog entry's format to fhir-r4")


def _puts(body: str, where: str) -> list[_Put]:
    """Each entry of the Bundle as a PUT, all checked before any is sent."""
    return [_put(index, entry, where) for index, entry in enumerate(_entries(body, where))]


def _put(index: int, entry: object, where: str) -> _Put:
    """One entry as a PUT; an entry without a resource type and id is refused by its
    place in the Bundle, never its content."""
    resource = entry.get("resource") if isinstance(entry, dict) else None
    if not isinstance(resource, dict):
        resource = {}
    kind, ident = resource.get("resourceType"), resource.get("id")
    if not (isinstance(kind, str) and _TYPE.fullmatch(kind)
            and isinstance(ident, str) and _ID.fullmatch(ident)):
        raise DeliveryFailed(
            ErrorClass.REJECTED, f"{where}: Bundle.entry[{index}] has no resource with a "
            "resourceType and an id, so it cannot be put", hint=_PUT_HINT)
    body = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
    return _Put(index, kind, f"{kind}/{ident}", body.encode())


def _entries(body: str, where: str) -> list[Any]:
    """The Bundle's entries; a body that is not a Bundle is refused."""
    try:
        bundle = json.loads(body)
    except (ValueError, RecursionError):
        bundle = None
    if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle":
        entries = bundle.get("entry", [])
        if isinstance(entries, list):
            return entries
    raise DeliveryFailed(ErrorClass.VALIDATION, f"{where}: the delivery is not a FHIR Bundle",
                         hint="Check that the catalog entry's format is fhir-r4")


def fhir_sink(connection: Connection, _store: Engine) -> FhirSink:
    """The ``fhir`` sink factory: a sink for the connection's base URL, unconnected."""
    return FhirSink(connection)
