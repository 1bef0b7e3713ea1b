"""The patient's related persons as RelatedPerson resources: each NK1 (the v2-to-FHIR
NK1[RelatedPerson] map) and the mother PID-21 identifies (CX[RelatedPerson-Mother]).

:func:`related_person` builds the resource for any person the record names beside the
patient (a guarantor and an insured use it too); it gives None when the record holds
nothing of the person, so a minimised record makes no empty RelatedPerson.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.fhir import codes
from engine.fhir.concept_maps import mapped_concept
from engine.fhir.elements import (
    Json,
    absent,
    address,
    compact,
    concept,
    contact_points,
    human_name,
    identifier,
    items,
    section,
    text,
)
from engine.fhir.entries import Context
from engine.fhir.times import fhir_date, fhir_datetime

__all__ = ["add_related_persons", "related_person", "telecom_points"]

# NK1-3 codes for which the IG's ADT_A01 message map (row 15.1, "IF NK1-3.1 NOT IN
# ("EMR", "E", "F", "I", "S")") makes no RelatedPerson: an employer or an agency.
_NOT_PERSONS = frozenset({"EMR", "E", "F", "I", "S"})
_MOTHER = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                       "code": "MTH", "display": "mother"}]}


def add_related_persons(context: Context) -> None:
    """A RelatedPerson per NK1 and one for the mother PID-21 identifies."""
    entries, subject = context.entries, context.subject
    for index, kin in items(context.record, "related_persons"):
        relationship = section(kin, "relationship")
        if text(relationship.get("code")) in _NOT_PERSONS:
            continue
        resource = related_person(kin, subject, [
            mapped_concept("relationship", relationship, "0063"),
            mapped_concept("contact-role", kin.get("contact_role"), "0131")])
        if resource:
            context.made[f"related_person/{index}"] = entries.add(
                f"related_person/{index}", resource)
    mother = section(context.record, "patient").get("mother_identifiers")
    if isinstance(mother, list) and any(identifier(i) for i in mother):
        entries.add("related_person/mother", compact({
            "resourceType": "RelatedPerson",
            "identifier": [identifier(i) for i in mother],
            "patient": subject or absent(),
            "relationship": [_MOTHER],
        }))


def related_person(person: Mapping[str, Any], subject: Json | None,
                   relationships: Iterable[Json]) -> Json | None:
    """A RelatedPerson of ``person``'s names, identifiers, contacts, sex, birth date,
    language and period; None when the record holds none of them."""
    language = concept(person.get("language"))
    gender = person.get("gender")
    ssn = text(person.get("ssn"))
    resource = compact({
        "resourceType": "RelatedPerson",
        "identifier": [*(identifier(i) for _, i in items(person, "identifiers")),
                       _ssn(ssn) if ssn else None],
        "relationship": list(relationships),
        "name": [human_name(n) for _, n in items(person, "names")],
        "telecom": telecom_points(person),
        "gender": gender if gender in codes.GENDERS else None,
        "birthDate": fhir_date(person.get("birth_date")),
        "address": [address(a) for _, a in items(person, "addresses")],
        "period": compact({"start": fhir_datetime(person.get("start")),
                           "end": fhir_datetime(person.get("end"))}),
        "communication": [{"language": language}] if language else None,
    })
    if not set(resource) - {"resourceType", "relationship"}:
        return None  # a relationship alone says nothing of whom
    return {"resourceType": "RelatedPerson", "patient": subject or absent(), **resource}


def telecom_points(person: Mapping[str, Any]) -> list[Json]:
    """ContactPoints of ``telecom`` as sent, then of ``work_telecom``, whose use is work
    (the IG assigns it to NK1-6, a business phone)."""
    points = [p for _, t in items(person, "telecom") for p in contact_points(t)]
    points += [{**p, "use": "work"} for _, t in items(person, "work_telecom")
               for p in contact_points(t)]
    return points


def _ssn(value: str) -> Json:
    return {"type": {"coding": [{"system": codes.IDENTIFIER_TYPE_SYSTEM, "code": "SS"}]},
            "system": codes.US_SSN_SYSTEM, "value": value}
