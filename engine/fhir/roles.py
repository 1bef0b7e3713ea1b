"""ROL segments as PractitionerRoles (the IG's ROL[Encounter-PractitionerRole] map):
who plays what role in the patient's care, and from when to when. A role the sender
deletes (ROL-2 DE) is not sent on."""

from __future__ import annotations

from engine.fhir.elements import compact, concept, items
from engine.fhir.entries import Context
from engine.fhir.parties import practitioner_role
from engine.fhir.times import fhir_datetime

__all__ = ["add_roles"]


def add_roles(context: Context) -> None:
    for index, role in items(context.record, "roles"):
        if role.get("action") == "DE":
            continue
        practitioner_role(
            context.entries, f"role/{index}", role.get("person"),
            role=concept(role.get("role")) or None,
            period=compact({"start": fhir_datetime(role.get("begin")),
                            "end": fhir_datetime(role.get("end"))}) or None)
