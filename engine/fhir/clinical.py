"""The record's clinical sections as FHIR R4 resources, after the v2-to-FHIR IG:
allergies (AL1, IAM) as AllergyIntolerance, diagnoses (DG1) as Condition and the
Encounter's diagnoses, problems (PRB) as Condition on the problem list, procedures
(PR1) as Procedure.

An item the record holds nothing informative of (minimised to its set_id, say) gives no
resource: one made of its subject, an assigned status and a category would tell the
receiver nothing. What the IG assigns (an allergy's clinicalStatus "active", a
procedure's status "unknown" when the message does not say) is sent as it says.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from engine.fhir.elements import Json, absent, compact, concept, items, number, text
from engine.fhir.entries import Context, search_value
from engine.fhir.parties import location, practitioner
from engine.fhir.times import fhir_datetime

__all__ = ["add_allergies", "add_diagnoses", "add_problems", "add_procedures"]

_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
_SNOMED = "http://snomed.info/sct"
_ALLERGY_CLINICAL = _TERMINOLOGY + "allergyintolerance-clinical"
_CONDITION_CLINICAL = _TERMINOLOGY + "condition-clinical"
_CONDITION_VERIFICATION = _TERMINOLOGY + "condition-ver-status"
_CONDITION_CATEGORY = _TERMINOLOGY + "condition-category"
_DIAGNOSIS_ROLE = _TERMINOLOGY + "diagnosis-role"
_ASSERTED_DATE = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"
_DUE_TO = "http://hl7.org/fhir/StructureDefinition/condition-dueTo"

# FHIR R4's required value sets for what the concept maps give.
_ALLERGY_CATEGORIES = frozenset({"food", "medication", "environment", "biologic"})
_ALLERGY_TYPES = frozenset({"allergy", "intolerance"})
_CRITICALITIES = frozenset({"low", "high", "unable-to-assess"})
_CLINICAL_STATUSES = frozenset({
    "active", "recurrence", "relapse", "inactive", "remission", "resolved"})

# PR1-8 and PR1-11 as Procedure.performer.function (PR1[Procedure] rows 8 and 11).
_ANESTHESIOLOGIST, _SURGEON = "88189002", "304292004"

# Elements every resource of a kind has whatever the record holds: a resource with
# nothing else is not sent.
_SCAFFOLD = frozenset({
    "resourceType", "patient", "subject", "encounter", "clinicalStatus", "category", "status",
    "_status"})


def add_allergies(context: Context) -> None:
    """AllergyIntolerance per allergy (AL1[AllergyIntolerance], IAM[AllergyIntolerance])."""
    for index, allergy in items(context.record, "allergies"):
        resource = _allergy(allergy, context.subject)
        if _informative(resource):
            context.entries.add(f"allergy/{index}", resource)


def _allergy(allergy: Mapping[str, Any], subject: Json | None) -> Json:
    category, kind = allergy.get("category"), allergy.get("type")
    criticality = allergy.get("criticality")
    onset = fhir_datetime(allergy.get("onset"))
    reactions = [{"text": reaction} for reaction in _texts(allergy.get("reactions"))]
    return compact({
        "resourceType": "AllergyIntolerance",
        "identifier": [entity_identifier(allergy.get("identifier"))],
        # AL1[AllergyIntolerance] row 0: assigned, since constraint ait-1 needs one.
        "clinicalStatus": {"coding": [{"system": _ALLERGY_CLINICAL, "code": "active"}]},
        "type": kind if kind in _ALLERGY_TYPES else None,
        "category": [category] if category in _ALLERGY_CATEGORIES else None,
        "criticality": criticality if criticality in _CRITICALITIES else None,
        "code": _codes(allergy.get("code"), allergy.get("clinician_code")),
        "patient": subject or absent(),
        "onsetDateTime": onset,
        "onsetString": None if onset else text(allergy.get("onset_text")),
        "recordedDate": fhir_datetime(allergy.get("recorded_at")),
        "reaction": [{"manifestation": reactions}] if reactions else None,
    })


def add_diagnoses(context: Context) -> None:
    """Condition per diagnosis (DG1[Condition]); with a visit, the Encounter's diagnosis
    refers to it (DG1[Encounter]). ``made["condition/N"]`` is diagnosis N's Condition."""
    parents: dict[str, Json] = {}
    encounter = context.entries.resource(context.encounter)
    for index, diagnosis in items(context.record, "diagnoses"):
        parent = _parent(context, diagnosis.get("parent"), "Condition", parents)
        resource = _condition(diagnosis, context, parent)
        if not _informative(resource):
            continue
        reference = context.made[f"condition/{index}"] = context.entries.add(
            f"diagnosis/{index}", resource)
        if encounter is not None:
            encounter.setdefault("diagnosis", []).append(_encounter_diagnosis(
                diagnosis, reference))


def _condition(diagnosis: Mapping[str, Any], context: Context, parent: Json | None) -> Json:
    attested = fhir_datetime(diagnosis.get("attested_at"))
    code = _codes(diagnosis.get("code"))
    described = text(diagnosis.get("description"))
    return compact({
        "resourceType": "Condition",
        "extension": [
            {"url": _ASSERTED_DATE, "valueDateTime": attested} if attested else None,
            {"url": _DUE_TO, "valueReference": parent} if parent else None],
        "identifier": [entity_identifier(diagnosis.get("identifier"))],
        # DG1[Condition] row 21: D (delete) is entered-in-error; A and U map to nothing.
        "verificationStatus": _coded(_CONDITION_VERIFICATION, "entered-in-error")
        if diagnosis.get("action_code") == "D" else None,
        "category": [_coded(_CONDITION_CATEGORY, "encounter-diagnosis")]
        if context.encounter else None,
        "code": compact({**code, "text": described}) if described else code,
        "subject": context.subject or absent(),
        "encounter": context.encounter,
        "onsetDateTime": fhir_datetime(diagnosis.get("diagnosed_at")),
        "recordedDate": attested,
        "asserter": practitioner(context.entries, diagnosis.get("clinician")),
    })


def _encounter_diagnosis(diagnosis: Mapping[str, Any], reference: Json) -> Json:
    role, rank = text(diagnosis.get("role")), number(diagnosis.get("priority"))
    return compact({
        "condition": reference,
        "use": _coded(_DIAGNOSIS_ROLE, role) if role else None,
        "rank": int(rank) if rank is not None and rank >= 1 and rank == int(rank) else None,
    })


def add_problems(context: Context) -> None:
    """Condition on the problem list per problem (PRB; the IG has no PRB map)."""
    for index, problem in items(context.record, "problems"):
        resource = _problem(problem, context.subject)
        if _informative(resource):
            context.entries.add(f"problem/{index}", resource)


def _problem(problem: Mapping[str, Any], subject: Json | None) -> Json:
    status = problem.get("life_cycle_status")
    state = (text(status.get("code")) or "").lower() if isinstance(status, Mapping) else ""
    onset = fhir_datetime(problem.get("onset"))
    abated = fhir_datetime(problem.get("resolved_at"))
    if abated and state not in _CLINICAL_STATUSES:
        # con-4: an abated condition is inactive, resolved or in remission. PRB-9 says it
        # abated, and "inactive" claims no more than that. A status the sender gives is
        # kept, even one that contradicts PRB-9: the receiver's refusal then shows it.
        state = "inactive"
    return compact({
        "resourceType": "Condition",
        "identifier": [entity_identifier(problem.get("identifier"))],
        # Constraint con-3 (a warning in R4) wants a problem-list item's status; its
        # required binding leaves no way to say "unknown", so an unknown one is left out.
        "clinicalStatus": _coded(_CONDITION_CLINICAL, state) if state in _CLINICAL_STATUSES
        else None,
        "category": [_coded(_CONDITION_CATEGORY, "problem-list-item")],
        "code": _codes(problem.get("code")),
        "subject": subject or absent(),
        "onsetDateTime": onset,
        "onsetString": None if onset else text(problem.get("onset_text")),
        "abatementDateTime": abated,
        "recordedDate": fhir_datetime(problem.get("established_at")),
    })


def add_procedures(context: Context) -> None:
    """Procedure per procedure (PR1[Procedure])."""
    parents: dict[str, Json] = {}
    for index, procedure in items(context.record, "procedures"):
        parent = _parent(context, procedure.get("parent"), "Procedure", parents)
        resource = _procedure(procedure, context, parent)
        if _informative(resource):
            context.entries.add(f"procedure/{index}", resource)


def _procedure(procedure: Mapping[str, Any], context: Context, parent: Json | None) -> Json:
    entries = context.entries
    code = _codes(procedure.get("code"))
    described = text(procedure.get("description"))
    performers = [
        _performer(practitioner(entries, procedure.get("anesthesiologist")), _ANESTHESIOLOGIST),
        _performer(practitioner(entries, procedure.get("surgeon")), _SURGEON),
        _performer(practitioner(entries, procedure.get("practitioner")), None)]
    return compact({
        "resourceType": "Procedure",
        "identifier": [entity_identifier(procedure.get("identifier"))],
        "partOf": [parent],
        # PR1[Procedure] row 0: the message decides; where it does not, "unknown".
        "status": "unknown",
        "category": concept(procedure.get("functional_type")),
        "code": compact({**code, "text": described}) if described else code,
        "subject": context.subject or absent(),
        "encounter": context.encounter,
        **_performed(procedure.get("performed_at"), number(procedure.get("minutes"))),
        "performer": performers,
        "location": location(entries, procedure.get("location")),
        "reasonCode": [concept(procedure.get("reason"))],
    })


def _performed(performed_at: Any, minutes: int | float | None) -> Json:
    """performedPeriod when PR1-7 gives the minutes after a PR1-5 with a time (PR1 rows 5
    and 7), else performedDateTime."""
    start = fhir_datetime(performed_at)
    if not start:
        return {}
    if minutes is not None and minutes >= 0 and "T" in start:
        end = datetime.fromisoformat(start) + timedelta(minutes=minutes)
        return {"performedPeriod": {"start": start, "end": end.isoformat()}}
    return {"performedDateTime": start}


def _performer(actor: Json | None, function: str | None) -> Json:
    if actor is None:
        return {}
    return compact({"function": _coded(_SNOMED, function) if function else None,
                    "actor": actor})


def _parent(context: Context, parent: Any, resource_type: str,
            made: dict[str, Json]) -> Json | None:
    """A Reference to the parent diagnosis or procedure an EI names (DG1-22, PR1-25;
    the IG's EI[Condition] and EI[Procedure]): a resource of its own holding its
    identifier, once per message however many name it. None without an EI-1."""
    found = entity_identifier(parent)
    if not found.get("value"):
        return None
    key = f"{resource_type}|{found.get('system', '')}|{found['value']}"
    if key not in made:
        resource: Json = {"resourceType": resource_type, "identifier": [found]}
        if resource_type == "Procedure":
            resource["status"] = "unknown"
        resource["subject"] = context.subject or absent()
        made[key] = context.entries.add(f"{resource_type.lower()}-parent/{len(made)}",
                                        resource, _create_once(resource_type, found))
    return dict(made[key])


def _create_once(resource_type: str, found: Json) -> Json | None:
    """A conditional create on the identifier when it has a system: a parent named by
    several messages is filed once."""
    if not found.get("system"):
        return None
    return {"method": "POST", "url": resource_type,
            "ifNoneExist": f"identifier={search_value(found['system'])}"
                           f"|{search_value(found['value'])}"}


def entity_identifier(canonical: Any) -> Json:
    """An Identifier from an EI: its universal ID (EI-3) as the system when FHIR can
    name it (urn:oid: for an ISO OID, urn:uuid: for a UUID, a URI as it is), else the
    assigning authority's name (EI-2, else EI-3) as the assigner."""
    if not isinstance(canonical, Mapping):
        return {}
    universal = text(canonical.get("universal_id"))
    system = _system(universal, text(canonical.get("universal_id_type")))
    authority = text(canonical.get("namespace")) or (None if system else universal)
    return compact({
        "system": system,
        "value": text(canonical.get("value")),
        "assigner": {"display": authority} if authority else None,
    })


def _system(universal: str | None, kind: str | None) -> str | None:
    if not universal:
        return None
    if kind == "ISO" and all(part.isdigit() for part in universal.split(".")):
        return f"urn:oid:{universal}"
    if kind == "UUID":
        return f"urn:uuid:{universal.lower()}"
    if kind in ("URI", "URL") and ":" in universal:
        return universal
    return None


def _codes(*coded: Any) -> Json:
    """One CodeableConcept from several coded values: their codings in order, else the
    first one's words as text."""
    concepts = [concept(value) for value in coded]
    codings = [coding for found in concepts for coding in found.get("coding", ())]
    if codings:
        return {"coding": codings}
    return next((found for found in concepts if found), {})


def _coded(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}


def _texts(value: Any) -> list[str]:
    return [item for item in value if text(item)] if isinstance(value, list) else []


def _informative(resource: Json) -> bool:
    return any(key not in _SCAFFOLD for key in resource)
