"""What HTTP ingest answers a FHIR source whose body it rejected: an OperationOutcome,
with the status that says why (415 a media type the connection does not take, 400 a
body that is not JSON it can read, 422 a resource type it does not read or a resource
that does not validate). The texts are the error's own, which never quote the input."""

from __future__ import annotations

from typing import Any

from engine.errors import MediaTypeError, SwitchboardError
from engine.fhir import FhirError

MEDIA_TYPE = "application/fhir+json"
# Where the OperationOutcome names the journaled message, for a sender to quote when
# it asks about it (its id is the outcome's own, not the message's).
MESSAGE_ID_EXTENSION = "https://switchboard.invalid/fhir/StructureDefinition/message-id"


def rejection(error: SwitchboardError | None, message_id: str | None) -> tuple[int, dict[str, Any]]:
    """The status and OperationOutcome for ``error``, the reason a message was
    journaled as rejected."""
    status, issue = _classified(error)
    found: dict[str, Any] = {"severity": "error", "code": issue,
                             "diagnostics": error.reason if error else "rejected"}
    hint = error.hint if error else None
    if hint:
        found["details"] = {"text": hint}
    location = error.location if error else ""
    if location:
        found["expression"] = [location]
    outcome: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": [found]}
    if message_id:
        outcome["extension"] = [{"url": MESSAGE_ID_EXTENSION, "valueString": message_id}]
    return status, outcome


def _classified(error: SwitchboardError | None) -> tuple[int, str]:
    if isinstance(error, MediaTypeError):
        return 415, "not-supported"
    if isinstance(error, FhirError):
        return (400, "structure") if error.issue == "structure" else (422, error.issue)
    return 422, "processing"  # read, but not taken: the exception queue has the detail
