"""Observations read back as canonical results: the inverse of
:mod:`engine.fhir.observations`. Each result names the order it answers (the
ServiceRequest it, or its DiagnosticReport, is based on) by that order's numbers.

Components that all carry the Observation's own code are the repetitions of one OBX-5
(OBX[Observation-Component]): they come back as the value's ``repetitions``, the first
of them as the value itself, as the HL7 v2 mapping keeps a repeating value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir.document import References, Resource, first, get
from engine.fhir.elements import compact
from engine.fhir.observations import INTERPRETATION_SYSTEM
from engine.fhir.read_values import (
    coded,
    codes_of,
    number,
    person,
    typed_value,
    universal_id,
)
from engine.fhir.times import canonical_time

__all__ = ["orders_of_results", "result"]

# SN-1 comparators, as Quantity.comparator writes them (FHIR's "ad" has none).
_COMPARATORS = frozenset({"<", "<=", ">=", ">"})
_MEDICAL_DIRECTOR = "MDIR"


def orders_of_results(observations: list[Resource], reports: list[Resource],
                      requests: list[Resource], references: References) -> dict[int, Resource]:
    """The ServiceRequest each Observation answers or informs (keyed by the
    Observation's id()): the one it is basedOn, else the one its DiagnosticReport is
    basedOn, else the one it is the supportingInfo of."""
    found: dict[int, Resource] = {}
    for request in requests:
        # In an order message, the results are what the order asks about.
        for reference in request.get("supportingInfo") or ():
            observation = references.resolve(reference)
            if observation is not None:
                found[id(observation)] = request
    for report in reports:
        order = request_of(report, references)
        for reference in report.get("result") or ():
            observation = references.resolve(reference)
            if order is not None and observation is not None:
                found[id(observation)] = order
    for observation in observations:
        order = request_of(observation, references)
        if order is not None:
            found[id(observation)] = order
    return found


def request_of(resource: Resource, references: References) -> Resource | None:
    for reference in resource.get("basedOn") or ():
        target = references.resolve(reference)
        if target is not None and target.get("resourceType") == "ServiceRequest":
            return target
    return None


def result(observation: Resource, order: Resource | None,
           references: References) -> dict[str, Any]:
    value, units = _value(observation)
    repetitions = _repetitions(observation)
    if repetitions:
        kind = next((r["type"] for r in repetitions if "type" in r), None)
        bare = [{k: v for k, v in r.items() if k != "type"} for r in repetitions]
        value = compact({"type": kind, **bare[0], "repetitions": bare})
        units = units or next((u for _, u in map(_value, _components(observation)) if u),
                              None)
    identifiers = order.get("identifier") if order else None
    coding = first(get(observation, "code", "coding")) or {}
    interpretations = list(codes_of(observation.get("interpretation")))
    return compact({
        "order_placer_id": typed_value(identifiers, "PLAC"),
        "order_filler_id": typed_value(identifiers, "FILL"),
        "code": coding.get("code"),
        "display": coding.get("display") or get(observation, "code", "text"),
        "system": coding.get("system"),
        "value": value if len(value) > 1 else None,  # a type alone says nothing
        "units": units,
        "reference_range": _reference_range(first(observation.get("referenceRange"))),
        "abnormal_flags": interpretations,
        "interpretations": [code for concept in observation.get("interpretation") or ()
                            for found in get(concept, "coding") or ()
                            if get(found, "system") == INTERPRETATION_SYSTEM
                            and (code := get(found, "code"))],
        "status": observation.get("status"),
        "observed_at": canonical_time(observation.get("effectiveDateTime")
                                      or observation.get("effectiveInstant")
                                      or get(observation, "effectivePeriod", "start")),
        "method": coded(observation.get("method")),
        "body_site": coded(observation.get("bodySite")),
        **_performers(observation, references),
        **_device(observation, references),
    })


def _components(observation: Resource) -> list[Resource]:
    return [c for c in observation.get("component") or () if isinstance(c, Mapping)]


def _repetitions(observation: Resource) -> list[dict[str, Any]]:
    """The values of components that repeat the Observation's own code."""
    own = get(observation, "code")
    components = _components(observation)
    if len(components) < 2 or any(c.get("code") != own for c in components):
        return []
    return [_value(component)[0] for component in components]


def _performers(observation: Resource, references: References) -> dict[str, Any]:
    """OBX-16's observers, OBX-25's medical director (a PractitionerRole of code MDIR)
    and OBX-23's organization."""
    observers, director, organization = [], None, None
    for reference in observation.get("performer") or ():
        target = references.resolve(reference)
        kind = get(target, "resourceType")
        if kind == "Organization" and organization is None:
            organization = compact({"name": get(target, "name"), "id": get(
                first(get(target, "identifier")), "value")})
        elif kind == "PractitionerRole" and _MEDICAL_DIRECTOR in codes_of(
                get(target, "code")) and director is None:
            director = person(reference, references)
        elif kind in ("Practitioner", "PractitionerRole") or target is None:
            found = person(reference, references)
            if found:
                observers.append(found)
    return compact({"observers": observers, "medical_director": director,
                    "performing_organization": organization})


def _device(observation: Resource, references: References) -> dict[str, Any]:
    """OBX-18 from the Device the encoder named it by (engine.fhir.parties.device)."""
    device = references.resolve(observation.get("device"))
    if get(device, "resourceType") != "Device":
        return {}
    found = first(get(device, "identifier")) or {}
    return compact({"device_id": get(first(get(device, "deviceName")), "name")
                    or universal_id(found),
                    "device_authority": found.get("system")
                    or get(found, "assigner", "display")})


def _value(observation: Resource) -> tuple[dict[str, Any], str | None]:
    """The canonical value of Observation.value[x] (typed as the HL7 v2 type that
    carries it: NM, SN, ST, CWE, TS, TM), and its units."""
    quantity = observation.get("valueQuantity")
    if isinstance(quantity, Mapping):
        comparator = quantity.get("comparator")
        typed = ({"type": "SN", "comparator": comparator} if comparator in _COMPARATORS
                 else {"type": "NM"})
        return compact({**typed, "number": number(quantity.get("value"))}), _unit(quantity)
    found = observation.get("valueRange")
    if isinstance(found, Mapping):
        low, high = found.get("low") or {}, found.get("high") or {}
        return compact({"type": "SN", "low": number(low.get("value")),
                        "high": number(high.get("value"))}), _unit(low) or _unit(high)
    found = observation.get("valueRatio")
    if isinstance(found, Mapping):
        return compact({"type": "SN",
                        "numerator": number(get(found, "numerator", "value")),
                        "denominator": number(get(found, "denominator", "value"))}), None
    found = observation.get("valueCodeableConcept")
    if isinstance(found, Mapping):
        coding = first(found.get("coding")) or {}
        return compact({"type": "CWE", "code": compact({
            "code": coding.get("code"), "display": coding.get("display"),
            "system": coding.get("system")}), "text": found.get("text")}), None
    if observation.get("valueInteger") is not None:
        return compact({"type": "NM", "number": number(observation["valueInteger"])}), None
    for element, value_type, key in (("valueDateTime", "TS", "datetime"),
                                     ("valueString", "ST", "text"),
                                     ("valueTime", "TM", "text")):
        found = observation.get(element)
        if found is not None:
            found = canonical_time(found) if key == "datetime" else str(found)
            return compact({"type": value_type, key: found}), None
    return {}, None


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
