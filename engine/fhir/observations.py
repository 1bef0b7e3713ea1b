"""Results (OBX) to Observations, after the v2-to-FHIR IG's OBX[Observation] map, and
OBX[Observation-Component] for a repeating OBX-5: one component per repetition, each
with the Observation's code, and no value of the Observation's own."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.fhir import codes, parties
from engine.fhir.elements import Json, absent, compact, concept, number, status, text
from engine.fhir.entries import Entries
from engine.fhir.times import fhir_datetime

__all__ = ["CARRIED", "observation", "value"]

# The canonical fields an Observation carries; a result with none of them gives none.
CARRIED = frozenset({
    "code", "display", "status", "value", "observed_at", "abnormal_flags", "interpretations",
    "reference_range", "observers", "medical_director", "method", "body_site", "device_id",
    "performing_organization"})

INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# SN-1 comparators that Quantity.comparator has; "=" says no more than the number does.
_COMPARATORS = frozenset({"<", "<=", ">=", ">"})
_CODED_TYPES = frozenset({"CWE", "CE", "CNE", "CF"})
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"\s*({_NUMBER})\s*-\s*({_NUMBER})\s*")
_BOUND = re.compile(rf"\s*([<>])=?\s*({_NUMBER})\s*")


def observation(entries: Entries, result: Mapping[str, Any], refer: Mapping[str, Any]) -> Json:
    """The Observation of one result. ``refer`` holds References: subject, encounter,
    based_on (the order's ServiceRequest), specimen."""
    unit = _unit(result)
    repetitions = _repetitions(result)
    code = concept(result)
    return compact({
        "resourceType": "Observation",
        "basedOn": [refer.get("based_on")],
        **status("Observation", result.get("status")),
        "code": code or absent(),
        "subject": refer.get("subject"),
        "encounter": refer.get("encounter"),
        "effectiveDateTime": fhir_datetime(result.get("observed_at")),
        "performer": _performers(entries, result),
        **({} if repetitions else value(result.get("value"), unit)),
        "interpretation": _interpretation(result),
        "bodySite": concept(result.get("body_site")),
        "method": concept(result.get("method")),
        "specimen": refer.get("specimen"),
        "device": parties.device(entries, result.get("device_id"),
                                 result.get("device_authority")),
        "referenceRange": _reference_range(text(result.get("reference_range")), unit),
        "component": [compact({"code": code or absent(), **value(repetition, unit)})
                      for repetition in repetitions],
    })


def _repetitions(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = result.get("value")
    repeated = found.get("repetitions") if isinstance(found, Mapping) else None
    if not isinstance(repeated, list) or len(repeated) < 2:
        return []
    kind = found.get("type") if isinstance(found, Mapping) else None
    return [{**item, "type": kind} if kind else item
            for item in repeated if isinstance(item, Mapping)]


def _unit(result: Mapping[str, Any]) -> Json:
    """The Quantity's unit, and its system and code when OBX-6.3 names a coding system
    FHIR knows (UCUM): CWE[Quantity]."""
    code, display = text(result.get("units")), text(result.get("units_display"))
    system = text(result.get("units_system"))
    uri = codes.system_uri(system) if system else None
    return compact({"unit": display or code, "system": uri if code else None,
                    "code": code if uri else None})


def _performers(entries: Entries, result: Mapping[str, Any]) -> list[Json | None]:
    """OBX-16's observers and OBX-25's medical director as PractitionerRoles, and
    OBX-23's organization (the IG's OBX[Observation] performer rows)."""
    observers = result.get("observers")
    found = [parties.role_of(entries, person, _OBSERVER)
             for person in (observers if isinstance(observers, list) else ())]
    organization = result.get("performing_organization")
    performing = parties.organization(entries, organization.get("name"), organization.get(
        "id")) if isinstance(organization, Mapping) else None
    found.append(parties.role_of(entries, result.get("medical_director"), _MEDICAL_DIRECTOR,
                                 performing))
    found.append(performing)
    return found


_OBSERVER = {"system": "http://terminology.hl7.org/CodeSystem/practitioner-role",
             "code": "responsibleObserver"}
_MEDICAL_DIRECTOR = {"system": codes.V2 + "0912", "code": "MDIR"}


def _interpretation(result: Mapping[str, Any]) -> list[Json]:
    """OBX-8 through the InterpretationCodes concept map; the flags as sent (table
    0078) when the record kept only those."""
    mapped, flags = result.get("interpretations"), result.get("abnormal_flags")
    if isinstance(mapped, list) and any(text(code) for code in mapped):
        pairs = [(INTERPRETATION_SYSTEM, code) for code in mapped]
    else:
        pairs = [(codes.ABNORMAL_FLAG_SYSTEM, flag)
                 for flag in (flags if isinstance(flags, list) else ())]
    return [{"coding": [{"system": system, "code": code}]} for system, code in pairs
            if text(code)]


def _reference_range(range_text: str | None, unit: Json) -> list[Json] | None:
    """OBX-7 as text, with low and high where it reads as numbers (70-80, <5, >10)."""
    if not range_text:
        return None
    quantity = {key: unit[key] for key in ("unit", "system", "code") if key in unit}
    found: Json = {}
    both, bound = _RANGE.fullmatch(range_text), _BOUND.fullmatch(range_text)
    if both:
        found = {"low": {"value": _decimal(both.group(1)), **quantity},
                 "high": {"value": _decimal(both.group(2)), **quantity}}
    elif bound:
        found = {"high" if bound.group(1) == "<" else "low":
                 {"value": _decimal(bound.group(2)), **quantity}}
    return [{**found, "text": range_text}]


def _decimal(digits: str) -> int | float:
    return float(digits) if "." in digits else int(digits)


def value(found: Any, unit: Json) -> Json:
    """value[x] from a canonical value (see rules/README.md): a Quantity, Range or
    Ratio with the result's unit, a CodeableConcept, a dateTime or a string. An RP or
    ED gives none: R4's Observation.value[x] has no Attachment."""
    if not isinstance(found, Mapping):
        return {}
    amount = number(found.get("number"))
    if amount is not None:
        comparator = found.get("comparator")
        if comparator == "<>":
            return {"valueString": f"<>{amount}"}
        return {"valueQuantity": compact({
            "value": amount, "comparator": comparator if comparator in _COMPARATORS else None,
            **unit})}
    low, high = number(found.get("low")), number(found.get("high"))
    if low is not None or high is not None:
        return {"valueRange": compact({
            "low": compact({"value": low, **unit}) if low is not None else None,
            "high": compact({"value": high, **unit}) if high is not None else None})}
    numerator, denominator = number(found.get("numerator")), number(found.get("denominator"))
    if numerator is not None or denominator is not None:
        return {"valueRatio": compact({
            "numerator": {"value": numerator} if numerator is not None else None,
            "denominator": {"value": denominator} if denominator is not None else None})}
    if isinstance(found.get("code"), Mapping) or found.get("type") in _CODED_TYPES:
        coded = concept(found.get("code"))
        concept_found = compact({**coded, "text": text(found.get("text")) or coded.get("text")})
        return {"valueCodeableConcept": concept_found} if concept_found else {}
    when = fhir_datetime(found.get("datetime"))
    if when:
        return {"valueDateTime": when}
    return {"valueString": found["text"]} if text(found.get("text")) else {}
