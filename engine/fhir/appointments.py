"""Appointments (SCH with its AIS, AIG, AIL and AIP) to FHIR Appointment, after the
v2-to-FHIR IG's SCH, AIS, AIG, AIL and AIP [Appointment] maps: every clinician and place
booked is a participant, as a Practitioner or Location of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir import parties
from engine.fhir.elements import (
    Json,
    absent,
    compact,
    concept,
    items,
    number,
    person,
    status,
    text,
    typed_identifier,
)
from engine.fhir.entries import Context, Entries
from engine.fhir.times import fhir_datetime, fhir_instant

__all__ = ["CARRIED", "add_appointments"]

CARRIED = frozenset({
    "placer_id", "filler_id", "status", "type", "reason", "start", "end", "duration_minutes",
    "location", "provider", "service_type", "personnel", "places", "equipment",
    "placer_contact", "filler_contact"})


def add_appointments(context: Context) -> None:
    for index, appointment in items(context.record, "appointments"):
        if any(appointment.get(field) not in (None, "", [], {}) for field in CARRIED):
            context.entries.add(f"appointment/{index}",
                                _appointment(context.entries, appointment, context.subject))


def _appointment(entries: Entries, appointment: Mapping[str, Any], subject: Json | None) -> Json:
    minutes = number(appointment.get("duration_minutes"))
    return compact({
        "resourceType": "Appointment",
        "identifier": [typed_identifier(appointment.get("placer_id"), "PLAC"),
                       typed_identifier(appointment.get("filler_id"), "FILL")],
        **status("Appointment", appointment.get("status")),
        "serviceType": [concept(appointment.get("service_type"))],
        "appointmentType": concept(appointment.get("type")),
        "reasonCode": [concept(appointment.get("reason"))],
        "start": fhir_instant(appointment.get("start")),
        "end": fhir_instant(appointment.get("end")),
        "minutesDuration": int(minutes) if minutes and minutes >= 1 and minutes == int(
            minutes) else None,
        "participant": _participants(entries, appointment, subject)
        or [{"actor": absent(), "_status": absent()}],
    })


def _participants(entries: Entries, appointment: Mapping[str, Any],
                  subject: Json | None) -> list[Json]:
    # The participants' own statuses (accepted, declined...) are not in the record.
    found = [_participant(subject)]
    personnel, places = _list(appointment, "personnel"), _list(appointment, "places")
    found += [_participant(parties.practitioner(entries, clinician), concept(
        clinician.get("role")), clinician.get("start")) for clinician in personnel]
    found += [_participant(parties.location(entries, place), None, place.get("start"))
              for place in places]
    found += [_participant(_equipment(resource), concept(resource.get("type")),
                           resource.get("start"))
              for resource in _list(appointment, "equipment")]
    if not personnel:  # a record from before AIP was mapped in full, or minimised so
        found.append(_participant(person(appointment.get("provider"))))
    if not places and text(appointment.get("location")):
        found.append(_participant({"type": "Location",
                                   "display": appointment["location"]}))
    for role in ("placer_contact", "filler_contact"):
        found.append(_participant(parties.practitioner(entries, appointment.get(role)),
                                  {"text": role.replace("_", " ")}))
    return [participant for participant in found if participant]


def _list(appointment: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = appointment.get(name)
    return [item for item in (value if isinstance(value, list) else ())
            if isinstance(item, Mapping)]


def _participant(actor: Json | None, kind: Json | None = None, start: Any = None) -> Json:
    if not actor:
        return {}
    return compact({"type": [kind], "actor": actor, "_status": absent(),
                    "period": compact({"start": fhir_datetime(start)})})


def _equipment(resource: Mapping[str, Any]) -> Json:
    """AIG-3 names a resource by identifier (the IG: participant.actor(Location.identifier))."""
    found = compact({"identifier": compact({"value": text(resource.get("code"))}),
                     "display": text(resource.get("display"))})
    return {"type": "Location", **found} if found else {}
