"""AllergyIntolerance, Condition and Procedure read back into the canonical clinical
sections: the inverse of :mod:`engine.fhir.clinical`. A Condition on the problem list
(category problem-list-item) is a problem; any other Condition is a diagnosis.

A Condition or Procedure that only names the parent of another (it holds nothing but
its identifier) is not an item of its own: it comes back as that item's ``parent``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.fhir.document import References, Resource, first, get
from engine.fhir.elements import compact
from engine.fhir.read_values import (
    coded,
    coding,
    each,
    entity_identifier,
    of_type,
    person,
)
from engine.fhir.times import canonical_time

__all__ = ["clinical_sections"]

_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
_ASSERTED_DATE = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"
_DUE_TO = "http://hl7.org/fhir/StructureDefinition/condition-dueTo"
_ANESTHESIOLOGIST, _SURGEON = "88189002", "304292004"
_PROBLEM = "problem-list-item"
# What only a parent's stand-in holds (see engine.fhir.clinical._parent).
_PARENT_ONLY = frozenset({"resourceType", "id", "identifier", "status", "subject"})


def clinical_sections(resources: list[Resource], references: References,
                      encounter: Resource | None) -> dict[str, list[dict[str, Any]]]:
    conditions = [c for c in of_type(resources, "Condition") if not _parent_only(c)]
    ranks = _encounter_diagnoses(encounter, references)
    return {
        "allergies": each(_allergy, of_type(resources, "AllergyIntolerance")),
        "diagnoses": each(lambda c: _diagnosis(c, references, ranks.get(id(c), {})),
                          [c for c in conditions if not _is_problem(c)]),
        "problems": each(_problem, [c for c in conditions if _is_problem(c)]),
        "procedures": each(lambda p: _procedure(p, references),
                           [p for p in of_type(resources, "Procedure") if not _parent_only(p)]),
    }


def _parent_only(resource: Resource) -> bool:
    return not set(resource) - _PARENT_ONLY


def _is_problem(condition: Resource) -> bool:
    return any(get(found, "code") == _PROBLEM for concept in condition.get("category") or ()
               for found in get(concept, "coding") or ())


def _codes(concept: Any) -> list[dict[str, Any]]:
    """Each coding of a CodeableConcept as a canonical coded value; its text alone as
    one display when it has none."""
    codings = get(concept, "coding") or []
    if codings:
        return [coding(found) for found in codings]
    return [coded(concept)] if get(concept, "text") else []


def _allergy(allergy: Resource) -> dict[str, Any]:
    found = _codes(allergy.get("code"))
    category = first(allergy.get("category"))
    return compact({
        "identifier": entity_identifier(first(allergy.get("identifier"))),
        "type": allergy.get("type"),
        "category": category,
        "criticality": allergy.get("criticality"),
        "code": found[0] if found else None,
        "clinician_code": found[1] if len(found) > 1 else None,
        "onset": canonical_time(allergy.get("onsetDateTime")),
        "onset_text": allergy.get("onsetString"),
        "recorded_at": canonical_time(allergy.get("recordedDate")),
        "reactions": [get(reaction, "text") for manifestation in allergy.get("reaction") or ()
                      for reaction in get(manifestation, "manifestation") or ()
                      if get(reaction, "text")],
    })


def _encounter_diagnoses(encounter: Resource | None,
                         references: References) -> dict[int, dict[str, Any]]:
    """Encounter.diagnosis's role and rank of each Condition (by its id())."""
    found: dict[int, dict[str, Any]] = {}
    for diagnosis in (encounter or {}).get("diagnosis") or ():
        condition = references.resolve(diagnosis.get("condition"))
        if condition is not None:
            found[id(condition)] = compact({
                "role": get(first(get(diagnosis, "use", "coding")), "code"),
                "priority": diagnosis.get("rank")})
    return found


def _diagnosis(condition: Resource, references: References,
               ranked: dict[str, Any]) -> dict[str, Any]:
    extensions = {e.get("url"): e for e in condition.get("extension") or ()}
    parent = references.resolve(get(extensions.get(_DUE_TO), "valueReference"))
    verification = get(first(get(condition, "verificationStatus", "coding")), "code")
    return compact({
        "identifier": entity_identifier(first(condition.get("identifier"))),
        "action_code": "D" if verification == "entered-in-error" else None,
        **_described(condition.get("code")),
        "diagnosed_at": canonical_time(condition.get("onsetDateTime")),
        "attested_at": canonical_time(get(extensions.get(_ASSERTED_DATE), "valueDateTime")
                                      or condition.get("recordedDate")),
        "clinician": person(condition.get("asserter"), references),
        "parent": entity_identifier(first(get(parent, "identifier"))),
        **ranked,
    })


def _described(concept: Any) -> dict[str, Any]:
    """The code and, where the concept has codings, its text as the description."""
    codings = get(concept, "coding") or []
    if not codings:
        return compact({"code": coded(concept)})
    return compact({"code": coding(codings[0]), "description": get(concept, "text")})


def _problem(condition: Resource) -> dict[str, Any]:
    status = get(first(get(condition, "clinicalStatus", "coding")), "code")
    return compact({
        "identifier": entity_identifier(first(condition.get("identifier"))),
        "life_cycle_status": {"code": status} if status else None,
        "code": coded(condition.get("code")),
        "onset": canonical_time(condition.get("onsetDateTime")),
        "onset_text": condition.get("onsetString"),
        "resolved_at": canonical_time(condition.get("abatementDateTime")),
        "established_at": canonical_time(condition.get("recordedDate")),
    })


def _procedure(procedure: Resource, references: References) -> dict[str, Any]:
    people: dict[str, Any] = {}
    for performer in procedure.get("performer") or ():
        function = get(first(get(performer, "function", "coding")), "code")
        role = {_ANESTHESIOLOGIST: "anesthesiologist", _SURGEON: "surgeon"}.get(
            function or "", "practitioner")
        people.setdefault(role, person(performer.get("actor"), references))
    period = procedure.get("performedPeriod") or {}
    parent = references.resolve(first(procedure.get("partOf")))
    return compact({
        "identifier": entity_identifier(first(procedure.get("identifier"))),
        "parent": entity_identifier(first(get(parent, "identifier"))),
        "functional_type": coded(procedure.get("category")),
        **_described(procedure.get("code")),
        "performed_at": canonical_time(procedure.get("performedDateTime")
                                       or period.get("start")),
        "minutes": _minutes(period.get("start"), period.get("end")),
        "reason": coded(first(procedure.get("reasonCode"))),
        **people,
    })


def _minutes(start: Any, end: Any) -> int | float | None:
    """PR1-7's minutes from the performedPeriod the encoder made of them."""
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None
    minutes = seconds / 60
    return int(minutes) if minutes == int(minutes) else minutes

