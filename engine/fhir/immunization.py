"""Immunizations (VXU: ORC, RXA, RXR) to FHIR Immunization resources, after the
v2-to-FHIR RXA[Immunization], RXR[Immunization] and ORC[Immunization] maps.

RXA-9 (administration notes) the IG leaves to realm guides; the US CDC guide's NIP001
codes say whether the record comes from whoever gave the dose (00, new record:
primarySource true) or from another source (01-08, historical: primarySource false,
with the code as reportOrigin). Other systems' codes set neither.
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
    items,
    status,
    text,
    typed_identifier,
)
from engine.fhir.entries import Context
from engine.fhir.medication import quantity
from engine.fhir.parties import location, organization, practitioner
from engine.fhir.times import fhir_date, fhir_datetime

__all__ = ["add_immunizations"]

CARRIED_FIELDS = frozenset({
    "placer_id", "filler_id", "recorded_at", "ordering_provider", "administered_at",
    "vaccine", "dose_amount", "dose_units", "information_source", "administering_provider",
    "lot_number", "expires_on", "manufacturer", "refusal_reason", "indication", "status",
    "location", "route", "site"})

_FUNCTION_SYSTEM = codes.V2 + "0443"  # provider role: AP administering, OP ordering
_NEW_RECORD, _INFORMATION_SOURCES = "00", "NIP001"
# occurrence[x] is required, and a receiver's model (fhir.resources among them) wants a
# value in it: a record without RXA-3 (minimised away) says, in words and in a
# data-absent-reason, that the time is unknown.
_UNKNOWN_OCCURRENCE = {"occurrenceString": "unknown", "_occurrenceString": absent()}


def add_immunizations(context: Context) -> None:
    """An Immunization per RXA; ``made["immunization/N"]`` is immunization N's."""
    for index, immunization in items(context.record, "immunizations"):
        if any(immunization.get(key) not in (None, "", [], {}) for key in CARRIED_FIELDS):
            context.made[f"immunization/{index}"] = context.entries.add(
                f"immunization/{index}", _immunization(context, immunization))


def _immunization(context: Context, given: Mapping[str, Any]) -> Json:
    entries = context.entries
    occurred = fhir_datetime(given.get("administered_at"))
    manufacturer = given.get("manufacturer")
    manufacturer = manufacturer if isinstance(manufacturer, Mapping) else {}
    maker_system = text(manufacturer.get("system"))
    return compact({
        "resourceType": "Immunization",
        "identifier": [typed_identifier(given.get("placer_id"), "PLAC"),
                       typed_identifier(given.get("filler_id"), "FILL")],
        **status("Immunization", given.get("status")),
        "statusReason": concept(given.get("refusal_reason")),
        "vaccineCode": concept(given.get("vaccine")) or absent(),
        "patient": context.subject or absent(),
        "encounter": context.encounter,
        **({"occurrenceDateTime": occurred} if occurred else _UNKNOWN_OCCURRENCE),
        "recorded": fhir_datetime(given.get("recorded_at")),
        **_source(given.get("information_source")),
        "location": location(entries, given.get("location")),
        "manufacturer": organization(
            entries, manufacturer.get("display"), manufacturer.get("code"),
            (codes.system_uri(maker_system) or maker_system) if maker_system else None),
        "lotNumber": text(given.get("lot_number")),
        "expirationDate": fhir_date(given.get("expires_on")),
        "site": concept(given.get("site")),
        "route": concept(given.get("route")),
        "doseQuantity": quantity(given.get("dose_amount"), given.get("dose_units")),
        "performer": [_performer(practitioner(entries, given.get("ordering_provider")), "OP"),
                      _performer(practitioner(entries, given.get("administering_provider")),
                                 "AP")],
        "reasonCode": [concept(given.get("indication"))],
    })


def _performer(actor: Json | None, function: str) -> Json | None:
    if actor is None:
        return None
    return {"function": {"coding": [{"system": _FUNCTION_SYSTEM, "code": function}]},
            "actor": actor}


def _source(coded: Any) -> Json:
    """primarySource and reportOrigin from RXA-9 in the CDC guide's NIP001 codes."""
    if not isinstance(coded, Mapping) or coded.get("system") != _INFORMATION_SOURCES:
        return {}
    code = text(coded.get("code"))
    if code is None:
        return {}
    if code == _NEW_RECORD:
        return {"primarySource": True}
    return {"primarySource": False, "reportOrigin": concept(coded)}
