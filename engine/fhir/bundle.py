"""A canonical record to a FHIR R4 transaction Bundle, built as plain dicts: this runs
for every FHIR delivery, so no pydantic model is constructed here.

Minimum necessary: the record may be minimised to a destination's data scope, and a
field it does not hold never appears. Where FHIR requires an element the record does
not hold (a status, an Observation's code), the value set's own "unknown" or a
data-absent-reason extension fills it; nothing is made up.

Deterministic: each entry's fullUrl is ``urn:uuid:`` + uuid5 of the message id and the
entry's place in the record (``result/3``), or, for a party the message only names (a
practitioner, an organization), of what identifies it; so the same record and message
id always give the same Bundle and a retried delivery carries the same ids.

Requests (see :mod:`engine.fhir.entries`): each resource is put at its deterministic
id (``PUT Observation/<id>``), so delivering the message again creates nothing new;
resources refer to each other by fullUrl, which the server rewrites. The Patient is
created only if the server has none with its first identifier that has a URI system
(``ifNoneExist=identifier=system|value``), and the Bundle's references then point at
the one it has. Never a conditional update: a record minimised to a scope without
addresses would erase the receiver's addresses. An identifier without a URI system
cannot be searched for safely (the same number may belong to another patient in
another system), so such a Patient is put at an id made from that identifier.

A task outcome event's record (one with ``task_outcome``) is a write-back of a state:
its Bundle holds one Task (:mod:`engine.fhir.task`) and nothing else, created only if
the server has none with its identifier, so a retried delivery files it once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from engine.fhir import appointments, codes, observations, specimens
from engine.fhir.accounts import add_accounts
from engine.fhir.appointments import add_appointments
from engine.fhir.clinical import add_allergies, add_diagnoses, add_problems, add_procedures
from engine.fhir.coverage import add_coverages
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
    number,
    person,
    section,
    status,
    text,
    typed_identifier,
    v2_concept,
)
from engine.fhir.entries import Context, Entries, search_value
from engine.fhir.episodes import add_episode_of_care
from engine.fhir.immunization import add_immunizations
from engine.fhir.medication import add_medications
from engine.fhir.message_header import add_message_header, add_provenance
from engine.fhir.orders import ORDER_CARRIED, REPORT_CARRIED, add_orders_and_results
from engine.fhir.parties import location, practitioner
from engine.fhir.related_persons import add_related_persons
from engine.fhir.roles import add_roles
from engine.fhir.task import outcome_task
from engine.fhir.times import fhir_date, fhir_datetime

# The encoders of the record's other sections, each adding its resources to the
# Bundle after the patient, encounter, orders and results it may refer to.
SECTIONS: tuple[Callable[[Context], None], ...] = (
    add_allergies, add_diagnoses, add_problems, add_procedures, add_immunizations, add_medications,
    add_related_persons, add_coverages, add_accounts, add_episode_of_care)

# The canonical fields each kind of resource carries. An encounter or list item holding
# none of them (a result minimised to its set_id, say) gives no resource: one made only
# of what FHIR requires and the record lacks would tell the receiver nothing.
CARRIED_FIELDS = {
    "encounter": frozenset({
        "visit_number", "status", "class", "admission_type", "hospital_service", "attending",
        "referring", "admit_at", "discharge_at", "discharge_disposition", "location",
        "prior_location", "episode_identifier"}),
    "orders": ORDER_CARRIED,
    "results": observations.CARRIED,
    "reports": REPORT_CARRIED,
    "specimens": specimens.CARRIED,
    "order_specimens": specimens.CARRIED,
    "appointments": appointments.CARRIED,
    "documents": frozenset({
        "id", "type", "status", "availability", "created_at", "activity_at", "author",
        "filename", "text"}),
}


def encode_bundle(record: Mapping[str, Any], message_id: str) -> dict[str, Any]:
    """The transaction Bundle for a (possibly minimised) canonical record."""
    entries = Entries(message_id)
    if section(record, "task_outcome"):
        _add_task(entries, record)
    else:
        _add_resources(Context(entries, record))
    bundle: Json = {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": entries.url("bundle")},
        "type": "transaction",
    }
    if entries.entries:
        bundle["entry"] = entries.entries
    return bundle


def _add_resources(context: Context) -> None:
    entries, record = context.entries, context.record
    subject = context.subject = _add_patient(entries, record)
    _add_merge_linkage(context)
    encounter = context.encounter = _add_encounter(
        entries, section(record, "encounter"), subject)
    add_orders_and_results(context)
    add_appointments(context)
    for index, document in _carried(record, "documents"):
        entries.add(f"document/{index}", _document(document, subject, encounter))
    for add_section in SECTIONS:
        add_section(context)
    add_roles(context)
    # The header names the parties and resources made before it; the Provenance
    # targets every resource the message made, so both come last.
    add_message_header(context)
    add_provenance(context)


def _add_task(entries: Entries, record: Mapping[str, Any]) -> None:
    system, value = "urn:ietf:rfc:3986", entries.url("task")
    entries.add("task", outcome_task(record, {"system": system, "value": value}),
                {"method": "POST", "url": "Task",
                 "ifNoneExist": f"identifier={search_value(system)}|{search_value(value)}"})


def _carried(record: Mapping[str, Any], name: str) -> list[tuple[int, Mapping[str, Any]]]:
    return [(index, item) for index, item in items(record, name) if _carries(item, name)]


def _carries(item: Mapping[str, Any], name: str) -> bool:
    return any(item.get(field) not in (None, "", [], {}) for field in CARRIED_FIELDS[name])


def _add_patient(entries: Entries, record: Mapping[str, Any]) -> Json | None:
    resource = _patient(section(record, "patient"), section(record, "merge"))
    if len(resource) == 1:
        return None  # nothing of the patient is in the record
    identifiers = [i for i in resource.get("identifier", ()) if i.get("value")]
    searchable = [i for i in identifiers if i.get("system")]
    if searchable:
        return entries.add("patient", resource, {
            "method": "POST", "url": "Patient",
            "ifNoneExist": (f"identifier={search_value(searchable[0]['system'])}"
                            f"|{search_value(searchable[0]['value'])}")})
    if identifiers:
        # No system to search by: put at an id made from the first identifier and its
        # assigner, the same for this patient in every message.
        first = identifiers[0]
        return entries.add_shared(
            f"{(first.get('assigner') or {}).get('display', '')}|{first['value']}", resource)
    return entries.add("patient", resource)


def _patient(patient: Mapping[str, Any], merge: Mapping[str, Any]) -> Json:
    deceased_at = fhir_datetime(patient.get("deceased_at"))
    deceased = patient.get("deceased")
    gender = patient.get("gender")
    language = concept(patient.get("language"))
    birth_order, multiple = number(patient.get("birth_order")), patient.get("multiple_birth")
    birth_place = text(patient.get("birth_place"))
    return compact({
        "resourceType": "Patient",
        "identifier": [identifier(i) for _, i in items(patient, "identifiers")]
        + _national_identifiers(patient)
        + [identifier(i) for _, i in items(patient, "disability_identifiers")
           if i.get("person") in (None, "PT")],
        "name": [human_name(n) for _, n in items(patient, "names")],
        "telecom": [point for _, t in items(patient, "telecom") for point in contact_points(t)],
        "gender": gender if gender in codes.GENDERS else None,
        "birthDate": fhir_date(patient.get("birth_date")),
        "deceasedDateTime": deceased_at if deceased is not False else None,
        "deceasedBoolean": deceased if isinstance(deceased, bool) and not (
            deceased_at and deceased) else None,
        "address": [address(a) for _, a in items(patient, "addresses")],
        "maritalStatus": concept(patient.get("marital_status")),
        # PID-25 says more than PID-24: a birth order implies a multiple birth.
        "multipleBirthInteger": int(birth_order) if birth_order is not None and birth_order >= 1
        and birth_order == int(birth_order) else None,
        "multipleBirthBoolean": multiple if isinstance(multiple, bool) and birth_order is None
        else None,
        "communication": [{"language": language}] if language else None,
        "generalPractitioner": [person(patient.get("primary_care_provider"))],
        "managingOrganization": compact({"display": text(patient.get("primary_facility"))}),
        "extension": [{"url": codes.BIRTH_PLACE, "valueAddress": {"text": birth_place}}]
        if birth_place else None,
        # MRG: this patient replaces the one its former identifiers named (the IG's
        # MRG[Patient] map), referred to by identifier as the receiver may not have it.
        "link": [{"other": {"type": "Patient", "identifier": found}, "type": "replaces"}
                 for _, prior in items(merge, "prior_identifiers")
                 if (found := identifier(prior)).get("value")],
    })


def _add_merge_linkage(context: Context) -> None:
    """MRG: a Linkage saying the patient's former record is a historical version of
    this one, for a receiver that keeps both (the merged-away identifiers are named,
    not sent as a Patient the receiver may never have had)."""
    formers = [found for _, prior in items(section(context.record, "merge"),
                                           "prior_identifiers")
               if (found := identifier(prior)).get("value")]
    if not formers or context.subject is None:
        return
    context.entries.add("merge-linkage", {
        "resourceType": "Linkage",
        "item": [{"type": "source", "resource": context.subject}]
        + [{"type": "historical", "resource": {"type": "Patient", "identifier": former}}
           for former in formers],
    })


def _national_identifiers(patient: Mapping[str, Any]) -> list[Json]:
    """PID-19 and PID-20 as identifiers of type SS and DL (the IG's PID[Patient] map)."""
    found = []
    if text(patient.get("ssn")):
        found.append({"type": {"coding": [{"system": codes.IDENTIFIER_TYPE_SYSTEM,
                                           "code": "SS"}]},
                      "system": codes.US_SSN_SYSTEM, "value": patient["ssn"]})
    licence = patient.get("drivers_license")
    if isinstance(licence, Mapping) and text(licence.get("number")):
        found.append(compact({
            "type": {"coding": [{"system": codes.IDENTIFIER_TYPE_SYSTEM, "code": "DL"}]},
            "value": licence["number"],
            "assigner": compact({"display": text(licence.get("issuer"))}),
            "period": compact({"end": fhir_datetime(licence.get("expires"))}),
        }))
    return found


def _add_encounter(entries: Entries, encounter: Mapping[str, Any],
                   subject: Json | None) -> Json | None:
    if not _carries(encounter, "encounter"):
        return None
    class_code = text(encounter.get("class"))
    return entries.add("encounter", compact({
        "resourceType": "Encounter",
        "identifier": [typed_identifier(encounter.get("visit_number"), "VN")],
        **status("Encounter", encounter.get("status")),
        "class": {"system": codes.ACT_CODE_SYSTEM, "code": class_code} if class_code
        else absent(),
        "type": [v2_concept(encounter.get("admission_type"), "0007")],
        "serviceType": v2_concept(encounter.get("hospital_service"), "0069"),
        "subject": subject,
        "participant": [_participant(entries, role, encounter.get(role))
                        for role in codes.ENCOUNTER_ROLES],
        "period": compact({"start": fhir_datetime(encounter.get("admit_at")),
                           "end": fhir_datetime(encounter.get("discharge_at"))}),
        "hospitalization": compact({"dischargeDisposition": compact(
            {"text": text(encounter.get("discharge_disposition"))})}),
        "location": [_location(entries, encounter.get("location"), None),
                     _location(entries, encounter.get("prior_location"), "completed")],
    }))


def _participant(entries: Entries, role: str, canonical: Any) -> Json:
    individual = practitioner(entries, canonical)
    if not individual:
        return {}
    role_code = codes.ENCOUNTER_ROLES[role]
    return {"type": [{"coding": [{"system": codes.PARTICIPATION_SYSTEM, "code": role_code}]}],
            "individual": individual}


def _location(entries: Entries, canonical: Any, location_status: str | None) -> Json:
    """An Encounter location: a Location resource for the PL (see parties.location)."""
    found = location(entries, canonical)
    return compact({"location": found, "status": location_status}) if found else {}


def _document(document: Mapping[str, Any], subject: Json | None,
              encounter: Json | None) -> Json:
    availability = codes.DOCUMENT_AVAILABILITY.get(document.get("availability") or "")
    body = text(document.get("text"))
    attachment = compact({
        "contentType": "text/plain; charset=utf-8" if body else None,
        "data": base64.b64encode(body.encode("utf-8", "surrogatepass")).decode("ascii")
        if body else None,
        "title": text(document.get("filename")),
        "creation": fhir_datetime(document.get("created_at")),
    })
    return compact({
        "resourceType": "DocumentReference",
        "masterIdentifier": compact({"value": text(document.get("id"))}),
        **({"status": availability} if availability else {"_status": absent()}),
        "docStatus": codes.DOCUMENT_COMPLETION.get(document.get("status") or ""),
        "type": v2_concept(document.get("type"), "0270"),
        "subject": subject,
        "author": [person(document.get("author"))],
        "content": [{"attachment": attachment or absent()}],
        "context": compact({
            "encounter": [encounter],
            "period": compact({"start": fhir_datetime(document.get("activity_at"))}),
        }),
    })
