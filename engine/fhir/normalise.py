"""A validated FHIR R4 document to the canonical record: one small function per
canonical section, each reading the resources it needs as plain JSON.

What FHIR says with a code the canonical record keeps as an HL7 v2 code (address and
telecom kinds, priorities, document statuses) is read back through the tables in
``engine.fhir.codes``; statuses the record already holds as FHIR codes are copied.
Empty values are left out, as the HL7 v2 mapper leaves them out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from engine.fhir import codes
from engine.fhir.document import (
    References,
    Resource,
    authority,
    first,
    get,
    patient_identifiers,
    strings,
)
from engine.fhir.elements import compact
from engine.fhir.read import FhirInput
from engine.fhir.times import canonical_time

_PRIORITY_CODES = codes.reverse(codes.ORDER_PRIORITIES)
_ADDRESS_CODES = codes.reverse(codes.ADDRESS_KINDS)
_TELECOM_USE_CODES = codes.reverse(codes.TELECOM_USES)
# "other" stands for several devices (TDD, TTY, modem): it names none of them.
_EQUIPMENT_CODES = {system: equipment for system, equipment
                    in codes.reverse(codes.TELECOM_SYSTEMS).items() if system != "other"}
_COMPLETION_CODES = codes.reverse(codes.DOCUMENT_COMPLETION)
_AVAILABILITY_CODES = codes.reverse(codes.DOCUMENT_AVAILABILITY)
_ROLE_OF_CODE = codes.reverse(codes.ENCOUNTER_ROLES)

# SN-1 comparators, as Quantity.comparator writes them (FHIR's "ad" has none).
_COMPARATORS = frozenset({"<", "<=", ">=", ">"})


def to_canonical(fhir: FhirInput, *, received_at: datetime) -> dict[str, Any]:
    """The canonical record of a FHIR document read by ``read_fhir``. ``received_at``
    stands in for the send time when the document carries none."""
    resources = fhir.resources
    references = References(fhir.document)

    def of_type(resource_type: str) -> list[Resource]:
        return [r for r in resources if r.get("resourceType") == resource_type]

    encounters = of_type("Encounter")
    orders_of = _orders_of_results(of_type("Observation"), of_type("DiagnosticReport"),
                                   references)
    return {
        "message": _message(fhir, received_at),
        "patient": _patient(resources),
        "encounter": _encounter(encounters[0], references) if encounters else {},
        "orders": _each(_order, of_type("ServiceRequest")),
        "results": _each(lambda result: _result(result, orders_of.get(id(result))),
                         of_type("Observation")),
        "appointments": _each(_appointment, of_type("Appointment")),
        "referrals": [],
        "documents": _each(_document, of_type("DocumentReference")),
        "merge": {},
        "tasks": [],
    }


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
    identifiers = _each(_identifier, [i for i in every if not _national_kind(i)])
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    if patient is None:
        return compact({"identifiers": identifiers, **_national(national)})
    deceased_at = canonical_time(patient.get("deceasedDateTime"))
    gender = patient.get("gender")
    return compact({
        "identifiers": identifiers,
        "names": _each(_name, patient.get("name")),
        "birth_date": canonical_time(patient.get("birthDate")),
        "gender": gender if gender in codes.GENDERS else None,
        "addresses": _each(_address, patient.get("address")),
        "telecom": _each(_telecom, patient.get("telecom")),
        "marital_status": _coded(patient.get("maritalStatus")),
        "language": _coded(get(first(patient.get("communication")), "language")),
        "deceased": True if deceased_at else patient.get("deceasedBoolean"),
        "deceased_at": deceased_at,
        "primary_care_provider": _person(first(patient.get("generalPractitioner"))),
        "primary_facility": get(patient, "managingOrganization", "display"),
        **_national(national),
    })


def _national_kind(identifier: Resource) -> str | None:
    """SS for a US social security number, DL for a driver's licence: the two PID
    fields (PID-19, PID-20) the canonical patient keeps apart from its identifiers."""
    kinds = set(_codes([identifier.get("type")]))
    if "SS" in kinds and identifier.get("system") == codes.US_SSN_SYSTEM:
        return "SS"
    return "DL" if "DL" in kinds else None


def _national(identifiers: list[Resource]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for identifier in identifiers:
        if _national_kind(identifier) == "SS":
            found.setdefault("ssn", identifier.get("value"))
        else:
            found.setdefault("drivers_license", compact({
                "number": identifier.get("value"),
                "issuer": get(identifier, "assigner", "display"),
                "expires": canonical_time(get(identifier, "period", "end"))}))
    return compact(found)


def _identifier(identifier: Resource) -> dict[str, Any]:
    return compact({
        "value": identifier.get("value"),
        "assigning_authority": authority(identifier),
        "type": _code_or_text(identifier.get("type")),
    })


def _name(name: Resource) -> dict[str, Any]:
    given = strings(name.get("given"))
    return compact({
        "family": name.get("family"),
        "given": given[0] if given else None,
        "middle": " ".join(given[1:]),
        "prefix": " ".join(strings(name.get("prefix"))),
        "suffix": " ".join(strings(name.get("suffix"))),
        "use": name.get("use"),
    })


def _address(address: Resource) -> dict[str, Any]:
    lines = strings(address.get("line"))
    return compact({
        "line1": lines[0] if lines else None,
        "line2": ", ".join(lines[1:]),
        "city": address.get("city"),
        "state": address.get("state"),
        "postal_code": address.get("postalCode"),
        "country": address.get("country"),
        "type": _ADDRESS_CODES.get(("use", str(address.get("use"))))
        or _ADDRESS_CODES.get(("type", str(address.get("type")))),
    })


def _telecom(contact: Resource) -> dict[str, Any]:
    system, use = contact.get("system"), contact.get("use")
    return compact({
        "value": contact.get("value"),
        "use": _looked_up(_TELECOM_USE_CODES, use),
        "equipment": "CP" if system == "phone" and use == "mobile"
        else _looked_up(_EQUIPMENT_CODES, system),
        "email": contact.get("value") if system == "email" else None,
    })


def _encounter(encounter: Resource, references: References) -> dict[str, Any]:
    people: dict[str, Any] = {}
    for participant in encounter.get("participant") or ():
        for code in _codes(participant.get("type")):
            if code in _ROLE_OF_CODE:
                people.setdefault(_ROLE_OF_CODE[code],
                                  _person(participant.get("individual"), references))
    place = get(first(encounter.get("location")), "location")
    location = get(place, "display") or get(references.resolve(place), "name")
    return compact({
        "visit_number": _typed_value(encounter.get("identifier"), "VN")
        or get(first(encounter.get("identifier")), "value"),
        "class": get(encounter, "class", "code"),
        "status": encounter.get("status"),
        "location": compact({"description": location}),
        "admission_type": _code_or_text(first(encounter.get("type"))),
        "hospital_service": _code_or_text(encounter.get("serviceType")),
        "discharge_disposition": _code_or_text(
            get(encounter, "hospitalization", "dischargeDisposition")),
        "admit_at": canonical_time(get(encounter, "period", "start")),
        "discharge_at": canonical_time(get(encounter, "period", "end")),
        **people,
    })


def _order(request: Resource) -> dict[str, Any]:
    return compact({
        "placer_id": _typed_value(request.get("identifier"), "PLAC"),
        "filler_id": _typed_value(request.get("identifier"), "FILL"),
        "group_id": get(request, "requisition", "value"),
        **_coding(request.get("code")),
        "priority": _looked_up(_PRIORITY_CODES, request.get("priority")),
        "status": request.get("status"),
        "ordered_at": canonical_time(request.get("authoredOn")),
        "ordering_provider": _person(request.get("requester")),
    })


def _orders_of_results(observations: list[Resource], reports: list[Resource],
                       references: References) -> dict[int, Resource]:
    """The ServiceRequest each Observation answers (keyed by the Observation's id()):
    the one it is basedOn, else the one its DiagnosticReport is basedOn."""
    found: dict[int, Resource] = {}
    for report in reports:
        order = _request_of(report, references)
        for reference in report.get("result") or ():
            observation = references.resolve(reference)
            if order is not None and observation is not None:
                found[id(observation)] = order
    for observation in observations:
        order = _request_of(observation, references)
        if order is not None:
            found[id(observation)] = order
    return found


def _request_of(resource: Resource, references: References) -> Resource | None:
    for reference in resource.get("basedOn") or ():
        target = references.resolve(reference)
        if target is not None and target.get("resourceType") == "ServiceRequest":
            return target
    return None


def _result(observation: Resource, order: Resource | None) -> dict[str, Any]:
    value, units = _value(observation)
    identifiers = order.get("identifier") if order else None
    return compact({
        "order_placer_id": _typed_value(identifiers, "PLAC"),
        "order_filler_id": _typed_value(identifiers, "FILL"),
        **_coding(observation.get("code")),
        "value": value if len(value) > 1 else None,  # a type alone says nothing
        "units": units,
        "reference_range": _reference_range(first(observation.get("referenceRange"))),
        "abnormal_flags": list(_codes(observation.get("interpretation"))),
        "status": observation.get("status"),
        "observed_at": canonical_time(observation.get("effectiveDateTime")
                                      or observation.get("effectiveInstant")
                                      or get(observation, "effectivePeriod", "start")),
    })


def _value(observation: Resource) -> tuple[dict[str, Any], str | None]:
    """The canonical value of Observation.value[x] (typed as the HL7 v2 type that
    carries it: NM, SN, ST, CWE, TS, TM), and its units."""
    quantity = observation.get("valueQuantity")
    if isinstance(quantity, Mapping):
        comparator = quantity.get("comparator")
        typed = ({"type": "SN", "comparator": comparator} if comparator in _COMPARATORS
                 else {"type": "NM"})
        return compact({**typed, "number": _number(quantity.get("value"))}), _unit(quantity)
    found = observation.get("valueRange")
    if isinstance(found, Mapping):
        low, high = found.get("low") or {}, found.get("high") or {}
        return compact({"type": "SN", "low": _number(low.get("value")),
                        "high": _number(high.get("value"))}), _unit(low) or _unit(high)
    found = observation.get("valueRatio")
    if isinstance(found, Mapping):
        return compact({"type": "SN",
                        "numerator": _number(get(found, "numerator", "value")),
                        "denominator": _number(get(found, "denominator", "value"))}), None
    found = observation.get("valueCodeableConcept")
    if isinstance(found, Mapping):
        coding = first(found.get("coding")) or {}
        return compact({"type": "CWE", "code": compact({
            "code": coding.get("code"), "display": coding.get("display"),
            "system": coding.get("system")}), "text": found.get("text")}), None
    if observation.get("valueInteger") is not None:
        return compact({"type": "NM", "number": _number(observation["valueInteger"])}), None
    for element, value_type, key in (("valueDateTime", "TS", "datetime"),
                                     ("valueString", "ST", "text"),
                                     ("valueTime", "TM", "text")):
        found = observation.get(element)
        if found is not None:
            found = canonical_time(found) if key == "datetime" else str(found)
            return compact({"type": value_type, key: found}), None
    return {}, None


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _unit(quantity: Mapping[str, Any]) -> str | None:
    found = quantity.get("unit") or quantity.get("code")
    return str(found) if found else None


def _reference_range(reference_range: Resource | None) -> str | None:
    if not reference_range:
        return None
    low = get(reference_range, "low", "value")
    high = get(reference_range, "high", "value")
    both = f"{low}-{high}" if low is not None and high is not None else None
    return reference_range.get("text") or both


def _appointment(appointment: Resource) -> dict[str, Any]:
    actors = [get(p, "actor") for p in appointment.get("participant") or ()]
    return compact({
        "placer_id": _typed_value(appointment.get("identifier"), "PLAC"),
        "filler_id": _typed_value(appointment.get("identifier"), "FILL"),
        "reason": _coded(first(appointment.get("reasonCode"))),
        "type": _coded(appointment.get("appointmentType")),
        "start": canonical_time(appointment.get("start")),
        "end": canonical_time(appointment.get("end")),
        "duration_minutes": appointment.get("minutesDuration"),
        "status": appointment.get("status"),
        "location": get(_actor(actors, "Location"), "display"),
        "provider": _person(_actor(actors, "Practitioner")),
    })


def _actor(actors: list[Any], resource_type: str) -> Resource | None:
    for actor in actors:
        if isinstance(actor, Mapping) and (
                actor.get("type") == resource_type
                or str(actor.get("reference") or "").startswith(f"{resource_type}/")):
            return actor
    return None


def _document(document: Resource) -> dict[str, Any]:
    attachment = get(first(document.get("content")), "attachment") or {}
    return compact({
        "id": get(document, "masterIdentifier", "value"),
        "type": _code_or_text(document.get("type")),
        "status": _looked_up(_COMPLETION_CODES, document.get("docStatus")),
        "availability": _looked_up(_AVAILABILITY_CODES, document.get("status")),
        "created_at": canonical_time(attachment.get("creation") or document.get("date")),
        "activity_at": canonical_time(get(document, "context", "period", "start")),
        "author": _person(first(document.get("author"))),
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


# --- FHIR datatypes to canonical values -------------------------------------------


def _person(reference: Any, references: References | None = None) -> dict[str, Any]:
    """A canonical person from a Reference: its business identifier, or the identifier
    and name of the Practitioner it points at inside the document."""
    target = references.resolve(reference) if references is not None else None
    if target is not None and target.get("resourceType") == "Practitioner":
        identifier = first(target.get("identifier")) or {}
        name = first(target.get("name")) or {}
        return compact({
            "id": identifier.get("value"),
            "assigning_authority": authority(identifier) if identifier else None,
            "family": name.get("family"), "given": first(name.get("given")),
            "prefix": first(name.get("prefix")), "suffix": first(name.get("suffix"))})
    identifier = get(reference, "identifier") or {}
    return compact({"id": identifier.get("value"),
                     "assigning_authority": authority(identifier) if identifier else None})


def _coded(concept: Any) -> dict[str, Any]:
    return compact(_coding(concept))


def _coding(concept: Any) -> dict[str, Any]:
    """code, display and system of a CodeableConcept's first coding, the system as sent;
    its text is the display when the coding has none."""
    coding = first(get(concept, "coding")) or {}
    return {"code": coding.get("code"),
            "display": coding.get("display") or get(concept, "text"),
            "system": coding.get("system")}


def _code_or_text(concept: Any) -> str | None:
    coding = first(get(concept, "coding")) or {}
    found = coding.get("code") or get(concept, "text")
    return str(found) if found else None


def _codes(concepts: Any) -> Iterable[str]:
    """Every coding's code in a list of CodeableConcepts."""
    for concept in concepts or ():
        for coding in get(concept, "coding") or ():
            if coding.get("code"):
                yield coding["code"]


def _typed_value(identifiers: Any, type_code: str) -> str | None:
    for identifier in identifiers or ():
        if type_code in _codes([identifier.get("type")]):
            value = identifier.get("value")
            return str(value) if value else None
    return None


def _looked_up(table: Mapping[str, str], code: object) -> str | None:
    return table.get(code) if isinstance(code, str) else None


def _each(convert: Callable[[Resource], dict[str, Any]], items: Any) -> list[dict[str, Any]]:
    converted = (convert(item) for item in items or () if isinstance(item, Mapping))
    return [item for item in converted if item]
