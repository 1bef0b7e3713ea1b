"""The parties a message names, as resources of their own: Practitioner (XCN),
Organization (HD, XON, a facility's name), Location (PL) and Device (an application,
HD). Each is added to the Bundle once and referred to from every resource that names
it; see :mod:`engine.fhir.entries` for how their ids stay the same across messages.

A party with nothing but empty fields gives no resource and no reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir import codes
from engine.fhir.elements import compact, human_name, identifier, text
from engine.fhir.entries import Entries, Json, search_value

__all__ = ["device", "location", "organization", "practitioner", "practitioner_role", "role_of"]

_LOCATION_PARTS = ("point_of_care", "room", "bed", "facility", "building", "floor")
# The most specific part a location names decides its physical type (HL7's
# location-physical-type code system, as the IG's PL[Location] map uses it).
_PHYSICAL_TYPES = (("bed", "bd"), ("room", "ro"), ("point_of_care", "wa"), ("floor", "lvl"),
                   ("building", "bu"), ("facility", "si"))
_PHYSICAL_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def practitioner(entries: Entries, person: Any) -> Json | None:
    """A Reference to the Practitioner an XCN names (its number and name)."""
    if not isinstance(person, Mapping):
        return None
    number = text(person.get("id"))
    authority = text(person.get("assigning_authority"))
    resource = compact({
        "resourceType": "Practitioner",
        "identifier": [identifier({"value": number, "assigning_authority": authority})],
        "name": [human_name(person)],
    })
    if len(resource) == 1:
        return None
    # Without a number, a name identifies a practitioner only within its message.
    identity = f"{authority or ''}|{number}" if number else (
        f"{entries.message_id}|{_name_key(person)}")
    return entries.add_shared(identity, resource, _create_once(resource))


def organization(entries: Entries, name: Any = None, number: Any = None,
                 authority: Any = None) -> Json | None:
    """A Reference to the Organization a facility's name (and, where sent, its
    identifier and the identifier's authority) names."""
    name, number, authority = _words(name), _words(number), _words(authority)
    resource = compact({
        "resourceType": "Organization",
        "identifier": [identifier({"value": number, "assigning_authority": authority})],
        "name": name,
    })
    if len(resource) == 1:
        return None
    identity = f"{authority or ''}|{number}" if number else f"name|{name}"
    return entries.add_shared(identity, resource, _create_once(resource))


def location(entries: Entries, place: Any) -> Json | None:
    """A Reference to the Location a PL names: its parts joined (point of care, room,
    bed...) or its description, with the physical type of its most specific part."""
    if not isinstance(place, Mapping):
        return None
    parts = [text(place.get(part)) for part in _LOCATION_PARTS]
    name = ", ".join(filter(None, parts)) or text(place.get("description"))
    if not name:
        return None
    physical = next((kind for part, kind in _PHYSICAL_TYPES if text(place.get(part))), None)
    resource = compact({
        "resourceType": "Location",
        "name": name,
        "description": text(place.get("description")),
        "mode": "instance",
        "physicalType": {"coding": [{"system": _PHYSICAL_TYPE_SYSTEM, "code": physical}]}
        if physical else None,
    })
    return entries.add_shared("|".join(part or "" for part in parts), resource,
                              _create_once(resource))


def device(entries: Entries, application: Any, authority: Any = None,
           number: Any = None) -> Json | None:
    """A Reference to the Device an application names: the sending or receiving system
    of a message (HD-1, identified by its universal ID HD-2 where sent)."""
    name, authority, number = text(application), text(authority), text(number)
    if not name:
        return None
    resource = compact({
        "resourceType": "Device",
        "identifier": [identifier({"value": number or name, "assigning_authority": authority})],
        "deviceName": [{"name": name, "type": "user-friendly-name"}],
    })
    return entries.add_shared(f"{authority or ''}|{number or name}", resource,
                              _create_once(resource))


def practitioner_role(entries: Entries, key: str, person: Any, role: Json | None = None,
                      period: Json | None = None, organization: Json | None = None,
                      place: Json | None = None) -> Json | None:
    """A Reference to a PractitionerRole: the person (an XCN) in ``role`` (a
    CodeableConcept), keyed within the message by ``key``."""
    who = practitioner(entries, person)
    if not who:
        return None
    return entries.add(key, compact({
        "resourceType": "PractitionerRole",
        "practitioner": who,
        "code": [role],
        "period": period,
        "organization": organization,
        "location": [place],
    }))


def role_of(entries: Entries, person: Any, role: Json,
            organization: Json | None = None) -> Json | None:
    """A Reference to the PractitionerRole of a person (an XCN) named in a fixed role
    (a Coding: a responsible observer, an ordering provider), shared like the
    Practitioner: the same person in the same role is one resource."""
    who = practitioner(entries, person)
    if not who:
        return None
    resource = compact({
        "resourceType": "PractitionerRole",
        "practitioner": who,
        "code": [{"coding": [role]}],
        "organization": organization,
    })
    identity = "|".join((who["reference"], role.get("system", ""), role.get("code", ""),
                         (organization or {}).get("reference", "")))
    return entries.add_shared(identity, resource)


def _words(value: Any) -> str | None:
    """Text with something in it: FHIR strings may not be only whitespace."""
    found = text(value)
    return found if found and found.strip() else None


def _name_key(person: Mapping[str, Any]) -> str:
    return "|".join(text(person.get(part)) or "" for part in (
        "family", "given", "middle", "prefix", "suffix"))


def _create_once(resource: Json) -> Json | None:
    """A conditional create on the party's first identifier with a URI system, so a
    receiver that has it already keeps its own; a plain create otherwise."""
    for found in resource.get("identifier", ()):
        system, value = found.get("system"), found.get("value")
        if system and value and codes.is_absolute_uri(system):
            return {"method": "POST", "url": resource["resourceType"],
                    "ifNoneExist": f"identifier={search_value(system)}|{search_value(value)}"}
    return None
