"""Immunization, MedicationRequest and MedicationDispense read back into the canonical
record, each drug resolved through its medicationReference to the Medication it names:
the inverse of :mod:`engine.fhir.immunization` and :mod:`engine.fhir.medication`.

A MedicationRequest is a medication order (RXO) when its intent is original-order, and
a pharmacy order (RXE) when it is filler-order; any other intent (a plan, a proposal,
a reflex order) is a medication order too, since it has not been through a pharmacy.
"""

from __future__ import annotations

from typing import Any

from engine.fhir import codes
from engine.fhir.document import References, Resource, first, get
from engine.fhir.elements import compact
from engine.fhir.read_values import (
    code_or_text,
    coded,
    coded_in,
    each,
    number,
    of_type,
    person,
    quantity,
    system_name,
    typed_value,
    universal_id,
)
from engine.fhir.times import canonical_time

__all__ = ["medication_sections"]

_FUNCTION_SYSTEM = codes.V2 + "0443"
_INFORMATION_SOURCES = "NIP001"
_PRESCRIPTION = "Prescription number"
_STATUSES = {"stopped": "revoked"}


def medication_sections(resources: list[Resource],
                        references: References) -> dict[str, list[dict[str, Any]]]:
    requests = of_type(resources, "MedicationRequest")
    filled = [r for r in requests if r.get("intent") == "filler-order"]
    return {
        "immunizations": each(lambda i: _immunization(i, references),
                              of_type(resources, "Immunization")),
        "medication_orders": each(lambda r: _request(r, references),
                                  [r for r in requests if r not in filled]),
        "pharmacy_orders": each(lambda r: _request(r, references), filled),
        "medication_dispenses": each(lambda d: _dispense(d, references),
                                     of_type(resources, "MedicationDispense")),
    }


def _immunization(given: Resource, references: References) -> dict[str, Any]:
    performers = {get(first(get(p, "function", "coding")), "code"): p.get("actor")
                  for p in given.get("performer") or ()
                  if coded_in([get(p, "function")], _FUNCTION_SYSTEM)}
    manufacturer = references.resolve(given.get("manufacturer"))
    maker_id = first(get(manufacturer, "identifier")) or {}
    amount, units = quantity(given.get("doseQuantity"))
    return compact({
        "placer_id": typed_value(given.get("identifier"), "PLAC"),
        "filler_id": typed_value(given.get("identifier"), "FILL"),
        "status": given.get("status"),
        "refusal_reason": coded(given.get("statusReason")),
        "vaccine": coded(given.get("vaccineCode")),
        "administered_at": canonical_time(given.get("occurrenceDateTime")),
        "recorded_at": canonical_time(given.get("recorded")),
        "information_source": _source(given),
        "manufacturer": compact({
            "code": universal_id(maker_id), "display": get(manufacturer, "name"),
            "system": system_name(maker_id.get("system") or get(maker_id, "assigner",
                                                                 "display"))}),
        "lot_number": given.get("lotNumber"),
        "expires_on": canonical_time(given.get("expirationDate")),
        "site": coded(given.get("site")),
        "route": coded(given.get("route")),
        "dose_amount": amount,
        "dose_units": units,
        "ordering_provider": person(performers.get("OP"), references),
        "administering_provider": person(performers.get("AP"), references),
        "indication": coded(first(given.get("reasonCode"))),
    })


def _source(given: Resource) -> dict[str, Any]:
    """RXA-9 in the CDC guide's NIP001 codes, from primarySource and reportOrigin."""
    if given.get("primarySource") is True:
        return {"code": "00", "system": _INFORMATION_SOURCES}
    origin = coded(given.get("reportOrigin"))
    return {**origin, "system": _INFORMATION_SOURCES} if origin.get("code") else {}


def _drug(item: Resource, references: References) -> dict[str, Any]:
    medication = references.resolve(item.get("medicationReference"))
    if get(medication, "resourceType") != "Medication":
        return compact({"medication": coded(item.get("medicationCodeableConcept"))})
    return compact({"medication": coded(get(medication, "code")),
                    "dosage_form": coded(get(medication, "form"))})


def _request(request: Resource, references: References) -> dict[str, Any]:
    identifiers = request.get("identifier")
    dosage = first(request.get("dosageInstruction")) or {}
    dose = first(dosage.get("doseAndRate")) or {}
    low, units = quantity(get(dose, "doseRange", "low"))
    high, high_units = quantity(get(dose, "doseRange", "high"))
    amount, dispense_units = quantity(get(request, "dispenseRequest", "quantity"))
    daily = get(dosage, "maxDosePerPeriod", "numerator") or {}
    rate = dose.get("rateQuantity") or {}
    status = request.get("status")
    return compact({
        "placer_id": typed_value(identifiers, "PLAC"),
        "filler_id": typed_value(identifiers, "FILL"),
        "prescription_number": _prescription(identifiers),
        "status": _STATUSES.get(status, status) if isinstance(status, str) else None,
        **_drug(request, references),
        "ordered_at": canonical_time(request.get("authoredOn")),
        "ordering_provider": person(request.get("requester"), references),
        "dose_min": low,
        "dose_max": high,
        "dose_units": units or high_units,
        "route": coded(dosage.get("route")),
        "site": coded(dosage.get("site")),
        "rate": number(rate.get("value")),
        "rate_units": rate.get("unit"),
        "daily_dose": number(daily.get("value")),
        "daily_dose_units": daily.get("unit"),
        "substitution": code_or_text(get(request, "substitution", "allowedCodeableConcept")),
        "dispense_amount": amount,
        "dispense_units": dispense_units,
        "refills": get(request, "dispenseRequest", "numberOfRepeatsAllowed"),
    })


def _prescription(identifiers: Any) -> str | None:
    for found in identifiers or ():
        if code_or_text(found.get("type")) == _PRESCRIPTION:
            value = found.get("value")
            return str(value) if value else None
    return None


def _dispense(dispense: Resource, references: References) -> dict[str, Any]:
    authorizing = first(dispense.get("authorizingPrescription"))
    request = references.resolve(authorizing)
    prescription = _prescription(get(request, "identifier")) if request is not None else (
        _prescription([get(authorizing, "identifier")] if get(authorizing, "identifier")
                      else None))
    amount, units = quantity(dispense.get("quantity"))
    return compact({
        **_drug(dispense, references),
        "prescription_number": prescription,
        "dispensing_provider": person(get(first(dispense.get("performer")), "actor"),
                                      references),
        "dispense_type": code_or_text(dispense.get("type")),
        "amount": amount,
        "units": units,
        "dispensed_at": canonical_time(dispense.get("whenHandedOver")),
        "route": coded(get(first(dispense.get("dosageInstruction")), "route")),
    })
