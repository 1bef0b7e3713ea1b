"""A canonical record to a FHIR R4 transaction Bundle, built as plain dicts: this runs
for every FHIR delivery, so no pydantic model is constructed here.

Minimum necessary: the record may be minimised to a destination's data scope, and a
field it does not hold never appears. Where FHIR requires an element the record does
not hold (a status, an Observation's code), the value set's own "unknown" or a
data-absent-reason extension fills it; nothing is made up.

Deterministic: each entry's fullUrl is ``urn:uuid:`` + uuid5 of the message id and the
entry's place in the record (``result/3``), so the same record and message id always
give the same Bundle and a retried delivery carries the same ids.

Requests: every resource is created (POST); resources refer to each other by fullUrl,
which the server rewrites. The Patient is created only if the server has none with
its first identifier that has a URI system (``ifNoneExist=identifier=system|value``),
and the Bundle's references then point at the one it has. Never a conditional update:
a record minimised to a scope without addresses would erase the receiver's addresses.
An identifier without a URI system cannot be searched for safely (the same number may
belong to another patient in another system), so such a Patient is simply posted.

A task outcome event's record (one with ``task_outcome``) is a write-back of a state:
its Bundle holds one Task (:mod:`engine.fhir.task`) and nothing else, created only if
the server has none with its identifier, so a retried delivery files it once.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

from engine.fhir import codes
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
from engine.fhir.task import outcome_task
from engine.fhir.times import fhir_date, fhir_datetime, fhir_instant

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://switchboard.invalid/fhir/bundle")


# The canonical fields each kind of resource carries. An encounter or list item holding
# none of them (a result minimised to its set_id, say) gives no resource: one made only
# of what FHIR requires and the record lacks would tell the receiver nothing.
CARRIED_FIELDS = {
    "encounter": frozenset({
        "visit_number", "status", "class", "admission_type", "hospital_service", "attending",
        "referring", "admit_at", "discharge_at", "discharge_disposition", "location",
        "prior_location"}),
    "orders": frozenset({
        "placer_id", "filler_id", "group_id", "status", "priority", "code", "display",
        "ordered_at", "ordering_provider"}),
    "results": frozenset({
        "code", "display", "status", "value", "observed_at", "abnormal_flags",
        "reference_range"}),
    "appointments": frozenset({
        "placer_id", "filler_id", "status", "type", "reason", "start", "end",
        "duration_minutes", "location", "provider"}),
    "documents": frozenset({
        "id", "type", "status", "availability", "created_at", "activity_at", "author",
        "filename", "text"}),
}


class _Order(NamedTuple):
    position: int
    fields: Mapping[str, Any]
    reference: Json


class _Entries:
    """The Bundle's entries in the making, each under a stable local key."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.entries: list[Json] = []

    def url(self, key: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{self.message_id}/{key}')}"

    def add(self, key: str, resource: Json, request: Json | None = None) -> Json:
        """Add ``resource``; returns a Reference to it."""
        url = self.url(key)
        self.entries.append({"fullUrl": url, "resource": resource,
                             "request": request or {"method": "POST",
                                                    "url": resource["resourceType"]}})
        return {"reference": url}


def encode_bundle(record: Mapping[str, Any], message_id: str) -> dict[str, Any]:
    """The transaction Bundle for a (possibly minimised) canonical record."""
    entries = _Entries(message_id)
    if section(record, "task_outcome"):
        _add_task(entries, record)
    else:
        _add_resources(entries, record)
    bundle: Json = {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": entries.url("bundle")},
        "type": "transaction",
    }
    if entries.entries:
        bundle["entry"] = entries.entries
    return bundle


def _add_resources(entries: _Entries, record: Mapping[str, Any]) -> None:
    subject = _add_patient(entries, section(record, "patient"))
    encounter = _add_encounter(entries, section(record, "encounter"), subject)
    orders = _add_orders(entries, record, subject, encounter)
    _add_results(entries, record, orders, subject, encounter)
    for index, appointment in _carried(record, "appointments"):
        entries.add(f"appointment/{index}", _appointment(appointment, subject))
    for index, document in _carried(record, "documents"):
        entries.add(f"document/{index}", _document(document, subject, encounter))


def _add_task(entries: _Entries, record: Mapping[str, Any]) -> None:
    system, value = "urn:ietf:rfc:3986", entries.url("task")
    entries.add("task", outcome_task(record, {"system": system, "value": value}),
                {"method": "POST", "url": "Task",
                 "ifNoneExist": f"identifier={_search_value(system)}|{_search_value(value)}"})


def _carried(record: Mapping[str, Any], name: str) -> list[tuple[int, Mapping[str, Any]]]:
    return [(index, item) for index, item in items(record, name) if _carries(item, name)]


def _carries(item: Mapping[str, Any], name: str) -> bool:
    return any(item.get(field) not in (None, "", [], {}) for field in CARRIED_FIELDS[name])


def _add_patient(entries: _Entries, patient: Mapping[str, Any]) -> Json | None:
    resource = _patient(patient)
    if len(resource) == 1:
        return None  # nothing of the patient is in the record
    request: Json = {"method": "POST", "url": "Patient"}
    searchable = [i for i in resource.get("identifier", ()) if i.get("system") and i.get("value")]
    if searchable:
        request["ifNoneExist"] = (f"identifier={_search_value(searchable[0]['system'])}"
                                  f"|{_search_value(searchable[0]['value'])}")
    return entries.add("patient", resource, request)


def _search_value(value: str) -> str:
    """A token for a FHIR search: its special characters escaped, then URL-encoded."""
    for special in ("\\", "|", ",", "$"):
        value = value.replace(special, "\\" + special)
    return quote(value, safe=":/")


def _patient(patient: Mapping[str, Any]) -> Json:
    deceased_at = fhir_datetime(patient.get("deceased_at"))
    deceased = patient.get("deceased")
    gender = patient.get("gender")
    language = concept(patient.get("language"))
    return compact({
        "resourceType": "Patient",
        "identifier": [identifier(i) for _, i in items(patient, "identifiers")],
        "name": [human_name(n) for _, n in items(patient, "names")],
        "telecom": [point for _, t in items(patient, "telecom") for point in contact_points(t)],
        "gender": gender if gender in codes.GENDERS else None,
        "birthDate": fhir_date(patient.get("birth_date")),
        "deceasedDateTime": deceased_at if deceased is not False else None,
        "deceasedBoolean": deceased if isinstance(deceased, bool) and not (
            deceased_at and deceased) else None,
        "address": [address(a) for _, a in items(patient, "addresses")],
        "maritalStatus": concept(patient.get("marital_status")),
        "communication": [{"language": language}] if language else None,
        "generalPractitioner": [person(patient.get("primary_care_provider"))],
        "managingOrganization": compact({"display": text(patient.get("primary_facility"))}),
    })


def _add_encounter(entries: _Entries, encounter: Mapping[str, Any],
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
        "participant": [_participant(role, encounter.get(role))
                        for role in codes.ENCOUNTER_ROLES],
        "period": compact({"start": fhir_datetime(encounter.get("admit_at")),
                           "end": fhir_datetime(encounter.get("discharge_at"))}),
        "hospitalization": compact({"dischargeDisposition": compact(
            {"text": text(encounter.get("discharge_disposition"))})}),
        "location": [_location(encounter.get("location"), None),
                     _location(encounter.get("prior_location"), "completed")],
    }))


def _participant(role: str, canonical: Any) -> Json:
    individual = person(canonical)
    if not individual:
        return {}
    role_code = codes.ENCOUNTER_ROLES[role]
    return {"type": [{"coding": [{"system": codes.PARTICIPATION_SYSTEM, "code": role_code}]}],
            "individual": individual}


_LOCATION_PARTS = ("point_of_care", "room", "bed", "facility", "building", "floor")


def _location(canonical: Any, location_status: str | None) -> Json:
    """An Encounter location named by its display: the description, or the parts of
    the HL7 location (point of care, room, bed...) joined."""
    if not isinstance(canonical, Mapping):
        return {}
    display = text(canonical.get("description")) or ", ".join(
        filter(None, (text(canonical.get(part)) for part in _LOCATION_PARTS)))
    if not display:
        return {}
    return compact({"location": {"display": display}, "status": location_status})


def _add_orders(entries: _Entries, record: Mapping[str, Any], subject: Json | None,
                encounter: Json | None) -> list[_Order]:
    added = []
    for index, order in _carried(record, "orders"):
        reference = entries.add(f"order/{index}", compact({
            "resourceType": "ServiceRequest",
            "identifier": [typed_identifier(order.get("placer_id"), "PLAC"),
                           typed_identifier(order.get("filler_id"), "FILL")],
            "requisition": compact({"value": text(order.get("group_id"))}),
            **status("ServiceRequest", order.get("status")),
            "intent": "order",
            "priority": codes.ORDER_PRIORITIES.get(order.get("priority") or ""),
            "code": concept(order),
            "subject": subject or absent(),
            "encounter": encounter,
            "authoredOn": fhir_datetime(order.get("ordered_at")),
            "requester": person(order.get("ordering_provider")),
        }))
        added.append(_Order(index, order, reference))
    return added


def _add_results(entries: _Entries, record: Mapping[str, Any], orders: list[_Order],
                 subject: Json | None, encounter: Json | None) -> None:
    """An Observation per result, and a DiagnosticReport grouping the results of each
    order they name (by placer or filler id)."""
    reported: dict[int, list[Json]] = {}
    for index, result in _carried(record, "results"):
        order = _order_of(result, orders)
        observation = entries.add(f"result/{index}", _observation(
            result, subject, encounter, order.reference if order else None))
        if order is not None:
            reported.setdefault(order.position, []).append(observation)
    for order in orders:
        if order.position in reported:
            entries.add(f"report/{order.position}", compact({
                "resourceType": "DiagnosticReport",
                "basedOn": [order.reference],
                # The record holds no report status (OBR-25 is not mapped).
                **status("DiagnosticReport", None),
                "code": concept(order.fields) or absent(),
                "subject": subject,
                "encounter": encounter,
                "effectiveDateTime": fhir_datetime(order.fields.get("specimen_collected_at")),
                "result": reported[order.position],
            }))


def _order_of(result: Mapping[str, Any], orders: list[_Order]) -> _Order | None:
    for order in orders:
        for result_key, order_key in (("order_placer_id", "placer_id"),
                                      ("order_filler_id", "filler_id")):
            if text(result.get(result_key)) and result.get(result_key) == order.fields.get(
                    order_key):
                return order
    return None


def _observation(result: Mapping[str, Any], subject: Json | None, encounter: Json | None,
                 order: Json | None) -> Json:
    flags = result.get("abnormal_flags")
    range_text = text(result.get("reference_range"))
    return compact({
        "resourceType": "Observation",
        "basedOn": [order],
        **status("Observation", result.get("status")),
        "code": concept(result) or absent(),
        "subject": subject,
        "encounter": encounter,
        "effectiveDateTime": fhir_datetime(result.get("observed_at")),
        **_value(result),
        "interpretation": [{"coding": [{"system": codes.ABNORMAL_FLAG_SYSTEM, "code": flag}]}
                           for flag in (flags if isinstance(flags, list) else ())
                           if text(flag)],
        "referenceRange": [{"text": range_text}] if range_text else None,
    })


# SN-1 comparators that Quantity.comparator has; "=" says no more than the number does.
_COMPARATORS = frozenset({"<", "<=", ">=", ">"})
_CODED_TYPES = frozenset({"CWE", "CE", "CNE", "CF"})


def _value(result: Mapping[str, Any]) -> Json:
    """value[x] from the canonical value (see rules/README.md): a Quantity, Range or
    Ratio with the result's units, a CodeableConcept, a dateTime or a string. An RP or
    ED gives none: R4's Observation.value[x] has no Attachment."""
    value = result.get("value")
    if not isinstance(value, Mapping):
        return {}
    unit = text(result.get("units"))
    amount = number(value.get("number"))
    if amount is not None:
        comparator = value.get("comparator")
        if comparator == "<>":
            return {"valueString": f"<>{amount}"}
        return {"valueQuantity": compact({
            "value": amount, "comparator": comparator if comparator in _COMPARATORS else None,
            "unit": unit})}
    low, high = number(value.get("low")), number(value.get("high"))
    if low is not None or high is not None:
        return {"valueRange": compact({
            "low": compact({"value": low, "unit": unit}) if low is not None else None,
            "high": compact({"value": high, "unit": unit}) if high is not None else None})}
    numerator, denominator = number(value.get("numerator")), number(value.get("denominator"))
    if numerator is not None or denominator is not None:
        return {"valueRatio": compact({
            "numerator": {"value": numerator} if numerator is not None else None,
            "denominator": {"value": denominator} if denominator is not None else None})}
    if isinstance(value.get("code"), Mapping) or value.get("type") in _CODED_TYPES:
        coded = concept(value.get("code"))
        found = compact({**coded, "text": text(value.get("text")) or coded.get("text")})
        return {"valueCodeableConcept": found} if found else {}
    when = fhir_datetime(value.get("datetime"))
    if when:
        return {"valueDateTime": when}
    return {"valueString": value["text"]} if text(value.get("text")) else {}


def _appointment(appointment: Mapping[str, Any], subject: Json | None) -> Json:
    # The participants' own statuses (accepted, declined...) are not in the record.
    actors = [subject, person(appointment.get("provider")),
              compact({"type": "Location", "display": text(appointment.get("location"))})
              if text(appointment.get("location")) else None]
    participants = [{"actor": actor, "_status": absent()} for actor in actors if actor]
    minutes = number(appointment.get("duration_minutes"))
    return compact({
        "resourceType": "Appointment",
        "identifier": [typed_identifier(appointment.get("placer_id"), "PLAC"),
                       typed_identifier(appointment.get("filler_id"), "FILL")],
        **status("Appointment", appointment.get("status")),
        "appointmentType": concept(appointment.get("type")),
        "reasonCode": [concept(appointment.get("reason"))],
        "start": fhir_instant(appointment.get("start")),
        "end": fhir_instant(appointment.get("end")),
        "minutesDuration": int(minutes) if minutes and minutes >= 1 and minutes == int(
            minutes) else None,
        "participant": participants or [{"actor": absent(), "_status": absent()}],
    })


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
