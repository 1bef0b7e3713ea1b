"""Pharmacy orders and dispenses to FHIR: a MedicationRequest per order as placed (RXO,
intent original-order, after the v2-to-FHIR RXO[MedicationRequest] and
RXR[MedicationRequest] maps) and per pharmacy-encoded order (RXE, intent
filler-order, based on the order as placed), a MedicationDispense per dispense (RXD),
each naming its drug by a Medication resource (RXO-1, RXE-2, RXD-2 and the dosage
form) through medicationReference, as the IG's ``medication(Medication.code)`` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir import codes
from engine.fhir.elements import (
    Json,
    absent,
    compact,
    concept,
    identifier_type,
    items,
    number,
    status,
    text,
    typed_identifier,
    v2_concept,
)
from engine.fhir.entries import Context, Entries
from engine.fhir.parties import practitioner
from engine.fhir.times import fhir_datetime

__all__ = ["add_medications", "quantity"]

# The fields of each section that say something about the order or dispense; an item
# minimised to none of them gives no resource.
CARRIED_FIELDS = {
    "medication_orders": frozenset({
        "placer_id", "filler_id", "status", "ordered_at", "ordering_provider", "medication",
        "dose_min", "dose_max", "dose_units", "dosage_form", "substitution",
        "dispense_amount", "dispense_units", "refills", "route", "site"}),
    "pharmacy_orders": frozenset({
        "placer_id", "filler_id", "status", "ordered_at", "ordering_provider", "medication",
        "dose_min", "dose_max", "dose_units", "dosage_form", "substitution",
        "dispense_amount", "dispense_units", "refills", "prescription_number", "daily_dose",
        "rate", "route", "site"}),
    "medication_dispenses": frozenset({
        "medication", "dispensed_at", "amount", "units", "dosage_form",
        "prescription_number", "dispensing_provider", "dispense_type", "route"}),
}

# An order status in request-status words (the IG's OrderStatus and OrderControlCode
# maps) to MedicationRequest.status: a revoked order is stopped, a claim that holds
# whether or not any dose was given (cancelled would say none was).
_REQUEST_STATUSES = {"revoked": "stopped"}
_DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
_UCUM = "http://unitsofmeasure.org"


def add_medications(context: Context) -> None:
    """The record's medication orders, pharmacy orders and dispenses, in that order so
    that each refers to what it is based on."""
    entries, record = context.entries, context.record
    placed: dict[str, Json] = {}
    for index, order in _carried(record, "medication_orders"):
        reference = entries.add(f"medication_order/{index}", _request(
            context, order, f"medication_order/{index}", "original-order", None))
        if text(order.get("placer_id")):
            placed.setdefault(order["placer_id"], reference)
    prescribed: dict[str, Json] = {}
    for index, order in _carried(record, "pharmacy_orders"):
        based_on = placed.get(text(order.get("placer_id")) or "")
        reference = entries.add(f"pharmacy_order/{index}", _request(
            context, order, f"pharmacy_order/{index}", "filler-order", based_on))
        if text(order.get("prescription_number")):
            prescribed.setdefault(order["prescription_number"], reference)
    for index, dispense in _carried(record, "medication_dispenses"):
        entries.add(f"medication_dispense/{index}",
                    _dispense(context, dispense, f"medication_dispense/{index}", prescribed))


def _carried(record: Mapping[str, Any], name: str) -> list[tuple[int, Mapping[str, Any]]]:
    return [(index, item) for index, item in items(record, name)
            if any(item.get(key) not in (None, "", [], {}) for key in CARRIED_FIELDS[name])]


def _request(context: Context, order: Mapping[str, Any], key: str, intent: str,
             based_on: Json | None) -> Json:
    order_status = text(order.get("status")) or ""
    prescription = text(order.get("prescription_number"))
    return compact({
        "resourceType": "MedicationRequest",
        "identifier": [
            typed_identifier(order.get("placer_id"), "PLAC"),
            typed_identifier(order.get("filler_id"), "FILL"),
            {"type": identifier_type("Prescription number"), "value": prescription}
            if prescription else None],
        **status("MedicationRequest", _REQUEST_STATUSES.get(order_status, order_status)),
        "intent": intent,
        **_medication(context.entries, order, key),
        "subject": context.subject or absent(),
        "encounter": context.encounter,
        "authoredOn": fhir_datetime(order.get("ordered_at")),
        "requester": practitioner(context.entries, order.get("ordering_provider")),
        "basedOn": [based_on],
        "dosageInstruction": [_dosage(order)],
        "substitution": {"allowedCodeableConcept": v2_concept(order["substitution"], "0161")}
        if text(order.get("substitution")) else None,
        "dispenseRequest": compact({
            "quantity": quantity(order.get("dispense_amount"), order.get("dispense_units")),
            "numberOfRepeatsAllowed": _count(order.get("refills")),
        }),
    })


def _dispense(context: Context, dispense: Mapping[str, Any], key: str,
              prescribed: Mapping[str, Json]) -> Json:
    prescription = text(dispense.get("prescription_number"))
    authorizing = prescribed.get(prescription or "") or (
        {"type": "MedicationRequest", "identifier": {
            "type": identifier_type("Prescription number"), "value": prescription}}
        if prescription else None)
    performer = practitioner(context.entries, dispense.get("dispensing_provider"))
    return compact({
        "resourceType": "MedicationDispense",
        # RXD says nothing of the dispense's state: the value set's own "unknown".
        **status("MedicationDispense", None),
        **_medication(context.entries, dispense, key),
        "subject": context.subject,
        "context": context.encounter,
        "performer": [{"actor": performer}] if performer else None,
        "authorizingPrescription": [authorizing],
        "type": v2_concept(dispense.get("dispense_type"), "0484"),
        "quantity": quantity(dispense.get("amount"), dispense.get("units")),
        "whenHandedOver": fhir_datetime(dispense.get("dispensed_at")),
        "dosageInstruction": [compact({"route": concept(dispense.get("route"))})],
    })


def _medication(entries: Entries, item: Mapping[str, Any], key: str) -> Json:
    """medicationReference to a Medication of the item's drug code and dosage form; a
    data-absent medicationCodeableConcept when the record holds neither."""
    medication = compact({
        "resourceType": "Medication",
        "code": concept(item.get("medication")),
        "form": concept(item.get("dosage_form")),
    })
    if len(medication) == 1:
        return {"medicationCodeableConcept": absent()}
    return {"medicationReference": entries.add(f"{key}/medication", medication)}


def _dosage(order: Mapping[str, Any]) -> Json:
    """The IG's RXO map: the give amount as a range (RXO-2 its low end, RXO-3 its high
    end) of the ordered dose, in the give units; the RXR route and site."""
    low, high = number(order.get("dose_min")), number(order.get("dose_max"))
    units = order.get("dose_units")
    dose_range = compact({"low": quantity(low, units), "high": quantity(high, units)})
    daily = number(order.get("daily_dose"))
    rate = number(order.get("rate"))
    return compact({
        "route": concept(order.get("route")),
        "site": concept(order.get("site")),
        "doseAndRate": [compact({
            "type": {"coding": [{"system": _DOSE_RATE_TYPE, "code": "ordered"}]}
            if dose_range else None,
            "doseRange": dose_range,
            "rateQuantity": compact({"value": rate, "unit": text(order.get("rate_units"))})
            if rate is not None else None,
        })],
        "maxDosePerPeriod": {
            "numerator": compact({"value": daily, "unit": text(order.get("daily_dose_units"))}),
            "denominator": {"value": 1, "unit": "d", "system": _UCUM, "code": "d"},
        } if daily is not None else None,
    })


def quantity(value: Any, units: Any) -> Json:
    """A Quantity of ``value`` in coded ``units`` (CWE): the unit's code with its system
    when the system is a URI (FHIR wants both or neither), its words as the unit."""
    amount = number(value)
    if amount is None:
        return {}
    units = units if isinstance(units, Mapping) else {}
    system = codes.system_uri(units["system"]) if text(units.get("system")) else None
    unit_code = text(units.get("code"))
    return compact({
        "value": amount,
        "unit": text(units.get("display")) or unit_code,
        "system": system if unit_code else None,
        "code": unit_code if system else None,
    })


def _count(value: Any) -> int | None:
    found = number(value)
    return int(found) if found is not None and found >= 0 and found == int(found) else None
