"""A validated FHIR R4 document to the canonical record: one small function per
canonical section, each reading the resources it needs as plain JSON. The envelope,
patient, encounter, orders and documents are read here; the other sections by the
``read_*`` modules beside it (the message header, results, appointments, clinical
sections, medications, specimens and reports, and the people around the patient),
each the inverse of its section's encoder. A MessageHeader's event is the message's
event; without one, a Bundle's type is.

What FHIR says with a code the canonical record keeps as an HL7 v2 code (address and
telecom kinds, priorities, document statuses) is read back through the tables in
``engine.fhir.codes``; statuses the record already holds as FHIR codes are copied.
Empty values are left out, as the HL7 v2 mapper leaves them out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.fhir import codes
from engine.fhir.document import (
    References,
    Resource,
    first,
    get,
    patient_identifiers,
)
from engine.fhir.elements import compact
from engine.fhir.read import FhirInput
from engine.fhir.read_appointments import appointment
from engine.fhir.read_clinical import clinical_sections
from engine.fhir.read_medication import medication_sections
from engine.fhir.read_message import header_fields
from engine.fhir.read_orders import order_sections
from engine.fhir.read_people import people_sections
from engine.fhir.read_results import orders_of_results, result
from engine.fhir.read_values import (
    address,
    code_or_text,
    coded,
    codes_of,
    each,
    identifier,
    looked_up,
    name,
    of_type,
    person,
    telecoms,
    typed_value,
)
from engine.fhir.times import canonical_time

_PRIORITY_CODES = codes.reverse(codes.ORDER_PRIORITIES)
_COMPLETION_CODES = codes.reverse(codes.DOCUMENT_COMPLETION)
_AVAILABILITY_CODES = codes.reverse(codes.DOCUMENT_AVAILABILITY)
_ROLE_OF_CODE = codes.reverse(codes.ENCOUNTER_ROLES)


def to_canonical(fhir: FhirInput, *, received_at: datetime) -> dict[str, Any]:
    """The canonical record of a FHIR document read by ``read_fhir``. ``received_at``
    stands in for the send time when the document carries none."""
    resources = fhir.resources
    references = References(fhir.document)
    patients = of_type(resources, "Patient")
    encounters = of_type(resources, "Encounter")
    encounter = encounters[0] if encounters else None
    orders_of = orders_of_results(of_type(resources, "Observation"),
                                  of_type(resources, "DiagnosticReport"),
                                  of_type(resources, "ServiceRequest"), references)
    people = people_sections(resources, references, patients[0] if patients else None)
    patient, merge = people.pop("patient"), people.pop("merge")
    record: dict[str, Any] = {
        "message": {**_message(fhir, received_at), **header_fields(resources, references)},
        "patient": compact({**_patient(resources), **patient}),
        "encounter": _encounter(encounter, references) if encounter else {},
        "orders": each(lambda found: _order(found, references),
                       of_type(resources, "ServiceRequest")),
        "results": each(lambda found: result(found, orders_of.get(id(found)), references),
                        of_type(resources, "Observation")),
        "appointments": each(lambda found: appointment(found, references),
                             of_type(resources, "Appointment")),
        "referrals": [],
        "documents": each(_document, of_type(resources, "DocumentReference")),
        "merge": compact({**_merge(resources), **merge}),
        "tasks": [],
    }
    sections = {**clinical_sections(resources, references, encounter),
                **medication_sections(resources, references),
                **order_sections(resources, references), **people}
    # The sections a FHIR document may not carry are left out when it carries none of
    # them, as the HL7 v2 mapper leaves out the segments a message has not.
    record.update({key: found for key, found in sections.items() if found})
    return record


def _message(fhir: FhirInput, received_at: datetime) -> dict[str, Any]:
    """The envelope: the resource type as the message type and, for a Bundle, its type
    (transaction, collection, message...) as the event. A Bundle's timestamp, else the
    document's meta.lastUpdated, is when it was sent; a bare REST body says nothing
    of that, so the time it arrived stands in."""
    document = fhir.document
    is_bundle = fhir.resource_type == "Bundle"
    sent_at = (document.get("timestamp") if is_bundle else None) or get(
        document, "meta", "lastUpdated")
    # type and event are always in the envelope, event null for a single resource.
    return {
        "source_format": "fhir-r4",
        "type": fhir.resource_type,
        "event": document.get("type") if is_bundle else None,
        **compact({"control_id": fhir.control_id,
                   "sent_at": canonical_time(sent_at) or received_at.isoformat()}),
    }


def _patient(resources: list[Resource]) -> dict[str, Any]:
    every = patient_identifiers(resources)
    national = [i for i in every if _national_kind(i)]
    identifiers = each(identifier, [i for i in every if not _national_kind(i)])
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    if patient is None:
        return compact({"identifiers": identifiers, **_national(national)})
    deceased_at = canonical_time(patient.get("deceasedDateTime"))
    gender = patient.get("gender")
    birth_place = next((get(e, "valueAddress", "text") for e in patient.get("extension") or ()
                        if e.get("url") == codes.BIRTH_PLACE), None)
    birth_order = patient.get("multipleBirthInteger")
    return compact({
        "identifiers": identifiers,
        "names": each(name, patient.get("name")),
        "birth_date": canonical_time(patient.get("birthDate")),
        "gender": gender if gender in codes.GENDERS else None,
        "addresses": each(address, patient.get("address")),
        "telecom": telecoms(patient.get("telecom")),
        "marital_status": coded(patient.get("maritalStatus")),
        "language": coded(get(first(patient.get("communication")), "language")),
        "deceased": True if deceased_at else patient.get("deceasedBoolean"),
        "deceased_at": deceased_at,
        "primary_care_provider": person(first(patient.get("generalPractitioner"))),
        "primary_facility": get(patient, "managingOrganization", "display"),
        "birth_place": birth_place,
        "multiple_birth": patient.get("multipleBirthBoolean"),
        "birth_order": birth_order,
        **_national(national),
    })


def _merge(resources: list[Resource]) -> dict[str, Any]:
    """MRG-1: the identifiers of the patient this one replaces (Patient.link), else
    those a Linkage names as the historical records of the patient."""
    patients = of_type(resources, "Patient")
    links = (patients[0].get("link") or ()) if patients else ()
    prior = [found for link in links if link.get("type") == "replaces"
             and isinstance(found := get(link, "other", "identifier"), Mapping)]
    prior = prior or [found for linkage in of_type(resources, "Linkage")
                      for item in linkage.get("item") or ()
                      if item.get("type") == "historical"
                      and isinstance(found := get(item, "resource", "identifier"), Mapping)]
    return compact({"prior_identifiers": [identifier(found) for found in prior]})


def _national_kind(found: Resource) -> str | None:
    """SS for a US social security number, DL for a driver's licence: the two PID
    fields (PID-19, PID-20) the canonical patient keeps apart from its identifiers."""
    kinds = set(codes_of([found.get("type")]))
    if "SS" in kinds and found.get("system") == codes.US_SSN_SYSTEM:
        return "SS"
    return "DL" if "DL" in kinds else None


def _national(identifiers: list[Resource]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for national in identifiers:
        if _national_kind(national) == "SS":
            found.setdefault("ssn", national.get("value"))
        else:
            found.setdefault("drivers_license", compact({
                "number": national.get("value"),
                "issuer": get(national, "assigner", "display"),
                "expires": canonical_time(get(national, "period", "end"))}))
    return compact(found)


def _encounter(encounter: Resource, references: References) -> dict[str, Any]:
    people: dict[str, Any] = {}
    for participant in encounter.get("participant") or ():
        for code in codes_of(participant.get("type")):
            if code in _ROLE_OF_CODE:
                people.setdefault(_ROLE_OF_CODE[code],
                                  person(participant.get("individual"), references))
    places: dict[str, Any] = {}
    for found in encounter.get("location") or ():
        field = "prior_location" if found.get("status") == "completed" else "location"
        place = found.get("location")
        target = references.resolve(place)
        places.setdefault(field, compact({
            "description": get(place, "display") or get(target, "description")
            or get(target, "name")}))
    episode = references.resolve(first(encounter.get("episodeOfCare")))
    return compact({
        "visit_number": typed_value(encounter.get("identifier"), "VN")
        or get(first(encounter.get("identifier")), "value"),
        "class": get(encounter, "class", "code"),
        "status": encounter.get("status"),
        **places,
        "admission_type": code_or_text(first(encounter.get("type"))),
        "hospital_service": code_or_text(encounter.get("serviceType")),
        "discharge_disposition": code_or_text(
            get(encounter, "hospitalization", "dischargeDisposition")),
        "admit_at": canonical_time(get(encounter, "period", "start")),
        "discharge_at": canonical_time(get(encounter, "period", "end")),
        "episode_identifier": identifier(first(get(episode, "identifier")) or {}),
        **people,
    })


def _order(request: Resource, references: References) -> dict[str, Any]:
    coding = first(get(request, "code", "coding")) or {}
    return compact({
        "placer_id": typed_value(request.get("identifier"), "PLAC"),
        "filler_id": typed_value(request.get("identifier"), "FILL"),
        "group_id": get(request, "requisition", "value"),
        "code": coding.get("code"),
        "display": coding.get("display") or get(request, "code", "text"),
        "system": coding.get("system"),
        "priority": looked_up(_PRIORITY_CODES, request.get("priority")),
        "status": request.get("status"),
        "ordered_at": canonical_time(request.get("authoredOn")),
        "ordering_provider": person(request.get("requester"), references),
    })


def _document(document: Resource) -> dict[str, Any]:
    attachment = get(first(document.get("content")), "attachment") or {}
    return compact({
        "id": get(document, "masterIdentifier", "value"),
        "type": code_or_text(document.get("type")),
        "status": looked_up(_COMPLETION_CODES, document.get("docStatus")),
        "availability": looked_up(_AVAILABILITY_CODES, document.get("status")),
        "created_at": canonical_time(attachment.get("creation") or document.get("date")),
        "activity_at": canonical_time(get(document, "context", "period", "start")),
        "author": person(first(document.get("author"))),
        "filename": attachment.get("title"),
        "text": _attachment_text(attachment),
    })


def _attachment_text(attachment: Resource) -> str | None:
    if not str(attachment.get("contentType") or "").startswith("text/"):
        return None
    try:
        return base64.b64decode(attachment.get("data") or "", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
