"""Appointments read back into the canonical record: the inverse of
:mod:`engine.fhir.appointments`. Each participant is sorted by what it is: a booked
clinician (AIP) with its role, a resource named only by identifier (AIG), or the
placer's or filler's contact person. A booked place (AIL) is a Location whose name
joins the parts of its PL, which cannot be told apart again: it does not come back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir.document import References, Resource, first, get
from engine.fhir.elements import compact
from engine.fhir.read_values import coded, person, typed_value
from engine.fhir.times import canonical_time

__all__ = ["appointment"]

_CONTACTS = {"placer contact": "placer_contact", "filler contact": "filler_contact"}


def appointment(booked: Resource, references: References) -> dict[str, Any]:
    found: dict[str, Any] = {}
    personnel: list[dict[str, Any]] = []
    equipment: list[dict[str, Any]] = []
    for participant in booked.get("participant") or ():
        if not isinstance(participant, Mapping):
            continue
        actor = participant.get("actor")
        target = references.resolve(actor)
        kind = first(participant.get("type"))
        start = canonical_time(get(participant, "period", "start"))
        contact = _CONTACTS.get(get(kind, "text") or "")
        if contact:
            found.setdefault(contact, person(actor, references))
        elif get(target, "resourceType") == "Practitioner":
            personnel.append(compact({**person(actor, references), "role": coded(kind),
                                      "start": start}))
        elif get(target, "resourceType") == "Location":
            continue  # its name joins the parts of the PL: none can be told apart
        elif get(actor, "type") == "Location" and get(actor, "identifier"):
            equipment.append(compact({"code": get(actor, "identifier", "value"),
                                      "display": get(actor, "display"),
                                      "type": coded(kind), "start": start}))
        elif get(actor, "type") == "Location":
            found.setdefault("location", get(actor, "display"))
        elif get(actor, "type") == "Practitioner":
            found.setdefault("provider", person(actor))
    return compact({
        "placer_id": typed_value(booked.get("identifier"), "PLAC"),
        "filler_id": typed_value(booked.get("identifier"), "FILL"),
        "reason": coded(first(booked.get("reasonCode"))),
        "type": coded(booked.get("appointmentType")),
        "service_type": coded(first(booked.get("serviceType"))),
        "start": canonical_time(booked.get("start")),
        "end": canonical_time(booked.get("end")),
        "duration_minutes": booked.get("minutesDuration"),
        "status": booked.get("status"),
        "personnel": personnel,
        "equipment": equipment,
        # A record with booked clinicians names its provider among them.
        "provider": {k: v for k, v in personnel[0].items() if k not in ("role", "start")}
        if personnel else None,
        **found,
    })
