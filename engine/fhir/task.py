"""A task outcome event's record to a FHIR R4 Task: how the work on a request ended,
for the system of record to file against that request.

A write-back of a state creates nothing else there: the requests the task was about
(the record's referrals and orders) and its patient are named by business identifier
(logical references), never posted, so a receiver files the state against the
referral it already has or refuses it. A referral is named by its originating number
(RF1-6, a placer identifier) and its external number (RF1-11, a filler identifier);
an order by its placer and filler numbers; ``focus`` is the first of them.

Task.status is the state chosen on completion when it is a Task status or a word for
one (``codes.TASK_STATES``), else what the decision was; ``businessStatus`` carries the
state (or decision) as it was chosen. As everywhere in the Bundle, only what the
destination's scope leaves in the record is sent: the decider's reason only when the
scope names ``task_outcome.reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir import codes
from engine.fhir.elements import (
    Json,
    compact,
    identifier,
    items,
    section,
    status,
    text,
    typed_identifier,
)
from engine.fhir.times import fhir_datetime

# (list in the record, its identifier fields with their table 0203 types)
_REQUESTS = (("referrals", (("id", "PLAC"), ("external_id", "FILL"))),
             ("orders", (("placer_id", "PLAC"), ("filler_id", "FILL"))))


def outcome_task(record: Mapping[str, Any], task_identifier: Json) -> Json:
    """The Task for a (minimised) outcome record, identified by ``task_identifier``."""
    outcome = section(record, "task_outcome")
    state, decision = text(outcome.get("state")), text(outcome.get("outcome"))
    requests = _requests(record)
    patients = [identifier(i) for _, i in items(section(record, "patient"), "identifiers")]
    patient = next((found for found in patients if found), None)
    return compact({
        "resourceType": "Task",
        "identifier": [task_identifier],
        "basedOn": requests,
        **status("Task", task_status(state, decision)),
        "businessStatus": compact({"text": state or decision}),
        "statusReason": compact({"text": text(outcome.get("reason"))}),
        "intent": "order",
        "focus": requests[0] if requests else None,
        "for": {"type": "Patient", "identifier": patient} if patient else None,
        "lastModified": fhir_datetime(outcome.get("decided_at")),
    })


def task_status(state: str | None, decision: str | None) -> str | None:
    allowed, _ = codes.STATUSES["Task"]
    if state in allowed:
        return state
    if state in codes.TASK_STATES:
        return codes.TASK_STATES[state]
    return codes.TASK_OUTCOMES.get(decision or "")


def _requests(record: Mapping[str, Any]) -> list[Json]:
    """A logical Reference to a ServiceRequest per identifier of each request."""
    found = []
    for name, fields in _REQUESTS:
        for _, request in items(record, name):
            for field, type_code in fields:
                named = typed_identifier(request.get(field), type_code)
                if named:
                    found.append({"type": "ServiceRequest", "identifier": named})
    return found
