"""HTTP ingest: POST /ingest/<connection> with HL7 v2 (application/hl7-v2) or FHIR R4
JSON (application/fhir+json), whichever the connection's catalog entry names. Each
inbound http connection in the catalog names the environment variable that holds its
token (endpoint.auth_secret_env); the sender presents it as a bearer token. Without
that token the answer is 401, whatever the connection id. 202 with the message id and
what it turned out to be when journaled (received; for a FHIR resource, an update of
an earlier version or a stale one; a duplicate or a conflict), a 4xx with a JSON error
otherwise, 503 when the store cannot commit. A FHIR source's rejected body, whatever
the reason (its media type too), is journaled as rejected and answered with an
OperationOutcome: 415, 400 or 422 (see admin.ingest_outcome)."""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from admin import ingest_outcome
from admin.auth import bearer_token
from admin.services import services
from engine.errors import MediaTypeError
from engine.journal import FHIR_R4, HL7V2, Kind, Received
from engine.rules.catalog_entry import Connection

blueprint = Blueprint("ingest", __name__, url_prefix="/ingest")
# What each catalog format may be posted as.
MEDIA_TYPES = {
    HL7V2: frozenset({"application/hl7-v2", "x-application/hl7-v2+er7", "application/edi-hl7"}),
    FHIR_R4: frozenset({"application/fhir+json", "application/json"}),
}
MAX_BODY = 16 * 1024 * 1024


@blueprint.post("/<connection_id>")
def ingest(connection_id: str) -> Any:
    connection = _authenticate_source(connection_id)
    if (request.content_length or 0) > MAX_BODY:
        abort(413, description=f"messages over {MAX_BODY} bytes are not accepted")
    expected = str(connection.format)
    media_types = MEDIA_TYPES.get(expected)
    refused = None
    if media_types is None or request.mimetype not in media_types:
        refused = MediaTypeError(
            f"connection '{connection_id}' takes {expected}: send it as "
            f"{' or '.join(sorted(media_types or ()))}")
        if expected != FHIR_R4:
            abort(415, description=refused.reason)
    body = request.get_data(cache=False)
    # A FHIR source's refused body is journaled as rejected too, and answered in FHIR.
    result = services().ingestor.ingest(
        Received(body, connection_id, request.remote_addr, format=expected, refused=refused))
    if result.journaled is None:
        abort(503, description="Switchboard cannot store the message right now; send it again")
    journaled = result.journaled
    if journaled.kind == Kind.REJECTED and expected == FHIR_R4:
        status, outcome = ingest_outcome.rejection(journaled.error, journaled.message_id)
        return Response(json.dumps(outcome), status=status,
                        mimetype=ingest_outcome.MEDIA_TYPE)
    if journaled.kind == Kind.REJECTED:
        response = jsonify(error="Bad Request", reason=str(journaled.error),
                           message_id=journaled.message_id)
        response.status_code = 400
        return response
    # 202 for whatever was journaled: a duplicate, a conflict or a stale version is
    # safe with Switchboard (the last two in the exception queue), and sending it
    # again would not change the answer.
    answer: dict[str, Any] = {"message_id": journaled.message_id,
                              "status": str(journaled.kind),
                              "original_message_id": journaled.original_message_id}
    if journaled.previous_message_id is not None:
        answer["previous_message_id"] = journaled.previous_message_id
    if journaled.kind in (Kind.UPDATE, Kind.CONFLICT, Kind.STALE):
        answer["reason"] = journaled.reason
    response = jsonify(answer)
    response.status_code = 202
    return response


def _authenticate_source(connection_id: str) -> Connection:
    # One 401 for every request without this connection's valid token, whatever the
    # id: a caller without one learns nothing about which connections exist or how
    # they are configured.
    refusal = "send this connection's token: Authorization: Bearer <token>"
    presented = bearer_token(refusal).encode()
    connection = services().rule_sets.current().rule_set.connections.get(connection_id)
    variable = None
    if (connection is not None and connection.direction != "outbound"
            and connection.transport == "http"):
        variable = getattr(connection.endpoint, "auth_secret_env", None)
    expected = os.environ.get(variable) if variable else None
    # Compared even when there is nothing to compare with, so the answer takes as long.
    # As bytes: compare_digest refuses str holding anything but ASCII.
    matches = hmac.compare_digest(presented, (expected or "").encode())
    if connection is None or not expected or not matches:
        abort(401, description=refusal)
    return connection
