"""HTTP ingest: POST /ingest/<connection> with HL7 v2 (application/hl7-v2) or FHIR R4
JSON (application/fhir+json). Each inbound http connection in the catalog names the
environment variable that holds its token (endpoint.auth_secret_env); the sender
presents it as a bearer token. 202 with the message id when journaled, a 4xx with a
JSON error otherwise, 503 when the store cannot commit."""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

from flask import Blueprint, abort, jsonify, request

from admin.services import services
from engine.journal import Kind, Received

blueprint = Blueprint("ingest", __name__, url_prefix="/ingest")
HL7_TYPES = {"application/hl7-v2", "x-application/hl7-v2+er7", "application/edi-hl7"}
FHIR_TYPES = {"application/fhir+json", "application/json"}
MAX_BODY = 16 * 1024 * 1024


@blueprint.post("/<connection_id>")
def ingest(connection_id: str) -> Any:
    _authenticate_source(connection_id)
    if (request.content_length or 0) > MAX_BODY:
        abort(413, description=f"messages over {MAX_BODY} bytes are not accepted")
    mimetype = request.mimetype
    body = request.get_data(cache=False)
    if mimetype in FHIR_TYPES:
        _check_fhir(body)
        abort(415, description="FHIR R4 input is not mapped to the canonical model yet; "
              "send HL7 v2 for now")
    if mimetype not in HL7_TYPES:
        abort(415, description="send HL7 v2 as application/hl7-v2 or FHIR R4 as "
              "application/fhir+json")
    result = services().ingestor.ingest(Received(body, connection_id, request.remote_addr))
    if result.journaled is None:
        abort(503, description="Switchboard cannot store the message right now; send it again")
    journaled = result.journaled
    if journaled.kind == Kind.REJECTED:
        response = jsonify(error="Bad Request", reason=str(journaled.error),
                           message_id=journaled.message_id)
        response.status_code = 400
        return response
    response = jsonify(message_id=journaled.message_id, status=str(journaled.kind),
                       original_message_id=journaled.original_message_id)
    response.status_code = 202
    return response


def _authenticate_source(connection_id: str) -> None:
    connection = services().rule_sets.current().rule_set.connections.get(connection_id)
    if connection is None or connection.direction == "outbound" or connection.transport != "http":
        abort(404, description=f"no inbound HTTP connection '{connection_id}' in the catalog")
    variable = getattr(connection.endpoint, "auth_secret_env", None)
    expected = os.environ.get(variable) if variable else None
    if not expected:
        abort(403, description=f"connection '{connection_id}' has no token configured; set "
              "endpoint.auth_secret_env in the catalog and that environment variable")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
        abort(401, description="send this connection's token: Authorization: Bearer <token>")


def _check_fhir(body: bytes) -> None:
    try:
        document = json.loads(body)
    except ValueError:
        abort(400, description="the body is not JSON")
    if not isinstance(document, dict) or "resourceType" not in document:
        abort(400, description="a FHIR R4 resource needs a resourceType")
