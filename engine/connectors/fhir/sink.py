"""The FHIR REST sink (``fhir``): the catalog URL is the server's base URL.

With method POST (the default) the delivery's Bundle is sent as the endpoint's mode
says (:mod:`engine.connectors.fhir.modes`): ``transaction`` posts the transaction Bundle
to the base, ``conditional-update`` posts it with a conditional update per identified
resource, and ``message`` posts a message Bundle to ``<base>/$process-message``; the
server applies each all or nothing. With PUT, for servers without transactions, each
entry's resource is put at ``<base>/<resourceType>/<id>`` in Bundle order, stopping at
the first refusal; every request carries the delivery's Idempotency-Key and names its
resource in ``X-Switchboard-Resource``, so a receiver dedupes per resource.

A refusal that comes with an OperationOutcome keeps its issues on the exception item
(:mod:`engine.connectors.fhir.operation_outcome`); the reason and the log name only
their severities, codes and element paths.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine

from engine.connectors import ConnectorError
from engine.connectors.fhir import modes
from engine.connectors.fhir.operation_outcome import Issue, expressions, issues, log_words
from engine.connectors.http.client import HttpClient, Target
from engine.connectors.http.headers import catalog_headers
from engine.connectors.http.outcome import error_class, raise_for_status
from engine.connectors.http.sink import http_endpoint
from engine.connectors.sink import IDEMPOTENCY_HEADER, DeliveryFailed, Outbound
from engine.encoders import FHIR_MEDIA_TYPE
from engine.rules.catalog_entry import Connection, FhirMode
from engine.rules.exception_policy import ErrorClass

__all__ = ["RESOURCE_HEADER", "FhirSink", "fhir_sink"]

RESOURCE_HEADER: Final = "X-Switchboard-Resource"
PROCESS_MESSAGE: Final = "$process-message"
log = logging.getLogger("switchboard.delivery")
_MODES: Final = ("POST", "PUT")
# A resource's type and id go into the request path, so only FHIR's own syntax is sent.
_TYPE: Final = re.compile(r"[A-Z][A-Za-z]{0,63}")
_ID: Final = re.compile(r"[A-Za-z0-9.-]{1,64}")
_PUT_HINT: Final = ("Use method POST (a transaction Bundle) for this destination, or a "
                    "mapping that gives every resource its id on the server")
_OUTCOME_HINTS: Final = {
    ErrorClass.REJECTED: "The FHIR server refused the message; its OperationOutcome, kept "
    "with this exception item, says why and where: fix the mapping or the data, then retry",
    ErrorClass.CONFLICT: "The FHIR server holds data that conflicts with this message (its "
    "OperationOutcome is kept with this exception item): resolve it there, then retry",
}


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
        self.mode = self.endpoint.mode or FhirMode.TRANSACTION
        self.connection = connection.id
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
        if self.endpoint.method == "PUT":
            for put in _puts(outbound.body, self.where):
                self._request("PUT", f"{self.base}/{put.path}", put.body,
                              {**headers, RESOURCE_HEADER: put.path}, outbound,
                              f" for Bundle.entry[{put.index}] ({put.resource_type})")
            return
        if self.mode is FhirMode.TRANSACTION:
            self._request("POST", self.base or "/", outbound.body.encode(), headers, outbound)
            return
        bundle = _bundle(outbound.body, self.where)
        try:
            if self.mode is FhirMode.MESSAGE:
                path, body = f"{self.base}/{PROCESS_MESSAGE}", modes.message(bundle)
            else:
                path, body = self.base or "/", modes.conditional_update(bundle)
        except modes.ModeError as error:
            raise DeliveryFailed(
                ErrorClass.REJECTED, f"{self.where}: cannot send as mode {self.mode}: {error}",
                hint="Choose the transaction mode for this destination, or route only "
                "messages this mode can carry") from None
        self._request("POST", path, _json(body), headers, outbound)

    def close(self) -> None:
        """Close the kept connection; never raises."""
        self._client.close()

    def _request(self, method: str, path: str, body: bytes, headers: dict[str, str],
                 outbound: Outbound, detail: str = "") -> None:
        response = self._client.request(method, path, body, headers)
        kind = error_class(response.status)
        found = issues(response.body) if kind else []
        if kind is None or not found:
            raise_for_status(response, self.where, detail)
            return
        self._log_refusal(outbound, response.status, found)
        try:
            raise_for_status(response, self.where, detail + _outcome_words(found))
        except DeliveryFailed as failed:
            raise DeliveryFailed(
                failed.error_class, failed.reason,
                hint=_OUTCOME_HINTS.get(failed.error_class, failed.hint),
                detail={"operation_outcome": {"status": response.status, "issue": [
                    issue.stored() for issue in found]}}) from None

    def _log_refusal(self, outbound: Outbound, status: int, found: list[Issue]) -> None:
        # Severities, codes and element paths only: diagnostics may quote the message.
        log.warning("FHIR server answered with an OperationOutcome", extra={
            "connection": self.connection, "delivery_id": outbound.delivery_id,
            "status": status, "issues": log_words(found),
            "mode": "put" if self.endpoint.method == "PUT" else str(self.mode)})


def _outcome_words(found: list[Issue]) -> str:
    codes = list(dict.fromkeys(issue.code for issue in found if issue.code))[:5]
    words = f"; OperationOutcome issue codes: {', '.join(codes)}" if codes else ""
    paths = expressions(found)
    return words + (f" at {', '.join(paths)}" if paths else "")


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


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
    return _Put(index, kind, f"{kind}/{ident}", _json(resource))


def _entries(body: str, where: str) -> list[Any]:
    entries: list[Any] = _bundle(body, where).get("entry", [])
    return entries


def _bundle(body: str, where: str) -> dict[str, Any]:
    """The delivery's Bundle; a body that is not a Bundle is refused."""
    try:
        bundle = json.loads(body)
    except (ValueError, RecursionError):
        bundle = None
    if (isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle"
            and isinstance(bundle.get("entry", []), list)):
        return bundle
    raise DeliveryFailed(ErrorClass.VALIDATION, f"{where}: the delivery is not a FHIR Bundle",
                         hint="Check that the catalog entry's format is fhir-r4")


def fhir_sink(connection: Connection, _store: Engine) -> FhirSink:
    """The ``fhir`` sink factory: a sink for the connection's base URL, unconnected."""
    return FhirSink(connection)
