"""How close a FHIR Bundle of Switchboard's comes to the one FHIR-Converter expects for
the same HL7 v2 message: the resource types both make, and the key fields that agree
(the Patient's identifiers, names, birth date and gender; Encounter class; every
Observation's code and value; Immunization, Condition and AllergyIntolerance codes).
A field missing from Switchboard's bundle counts as a disagreement."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Score:
    types_expected: int
    types_present: int
    fields_compared: int
    fields_agreeing: int
    missing_types: frozenset[str] = frozenset()

    def __add__(self, other: Score) -> Score:
        return Score(self.types_expected + other.types_expected,
                     self.types_present + other.types_present,
                     self.fields_compared + other.fields_compared,
                     self.fields_agreeing + other.fields_agreeing,
                     self.missing_types | other.missing_types)


def compare(ours: Json, expected: Json) -> Score:
    wanted, made = resource_types(expected), resource_types(ours)
    expected_fields, our_fields = key_fields(expected), key_fields(ours)
    agreeing = sum(min(count, our_fields[field]) for field, count in expected_fields.items())
    return Score(len(wanted), len(wanted & made), sum(expected_fields.values()), agreeing,
                 frozenset(wanted - made))


def resources(bundle: Json, resource_type: str | None = None) -> Iterator[Json]:
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource_type is None or resource.get("resourceType") == resource_type:
            yield resource


def resource_types(bundle: Json) -> set[str]:
    return {str(resource.get("resourceType")) for resource in resources(bundle)}


def key_fields(bundle: Json) -> Counter[tuple[str, ...]]:
    """Each key field as (what, value...), counted: one bundle may hold a value twice."""
    found: Counter[tuple[str, ...]] = Counter()
    for patient in resources(bundle, "Patient"):
        for identifier in patient.get("identifier") or []:
            if identifier.get("value"):
                found["patient.identifier", str(identifier["value"])] += 1
        for name in (patient.get("name") or [])[:1]:
            if name.get("family"):
                found["patient.family", str(name["family"]).upper()] += 1
            for given in (name.get("given") or [])[:1]:
                found["patient.given", str(given).upper()] += 1
        for element in ("birthDate", "gender"):
            if patient.get(element):
                found[f"patient.{element}", str(patient[element])] += 1
    for encounter in resources(bundle, "Encounter"):
        if (encounter.get("class") or {}).get("code"):
            found["encounter.class", str(encounter["class"]["code"])] += 1
    for observation in resources(bundle, "Observation"):
        found["observation", *_codes(observation.get("code")), _value(observation)] += 1
    for resource_type, element in (("Immunization", "vaccineCode"), ("Condition", "code"),
                                   ("AllergyIntolerance", "code")):
        for resource in resources(bundle, resource_type):
            found[resource_type.lower(), *_codes(resource.get(element))] += 1
    return found


def _codes(concept: Json | None) -> tuple[str, ...]:
    """The first coding's code, or the text when no coding has one."""
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code"):
            return (str(coding["code"]),)
    return (str((concept or {}).get("text") or ""),)


def _value(observation: Json) -> str:
    for element, value in observation.items():
        if not element.startswith("value"):
            continue
        if element == "valueQuantity":
            number = value.get("value")
            return "" if number is None else format(Decimal(str(number)).normalize(), "f")
        if element == "valueCodeableConcept":
            return _codes(value)[0]
        return str(value)
    return ""
