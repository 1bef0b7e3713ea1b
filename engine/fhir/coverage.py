"""The patient's insurances as Coverage resources (the v2-to-FHIR IN1[Coverage] map):
the payer and the insured's group employer as Organizations, the insured as the patient
(IN1-17 SEL) or a RelatedPerson, the patient as beneficiary.

The IG assigns no status to a Coverage made from IN1, and FHIR's value set has no
"unknown": the status carries a data-absent-reason. IN2 has no IG map; its Medicare and
Medicaid numbers and the insured's social security number follow FHIR-Converter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir import codes, parties
from engine.fhir.concept_maps import mapped_concept
from engine.fhir.elements import (
    Json,
    absent,
    compact,
    concept,
    identifier,
    items,
    section,
    text,
)
from engine.fhir.entries import Context
from engine.fhir.related_persons import related_person
from engine.fhir.times import fhir_datetime

__all__ = ["add_coverages"]

SUBSCRIBER_ID = "http://hl7.org/fhir/5.0/StructureDefinition/extension-subscriberId"
_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-class"
_MEDICARE_SYSTEM = "http://hl7.org/fhir/sid/us-medicare"


def add_coverages(context: Context) -> None:
    """A Coverage per IN1 that holds anything; its Reference is kept in
    ``context.made`` as ``coverage/{index}`` for the Account."""
    for index, insurance in items(context.record, "coverages"):
        resource = _coverage(context, index, insurance)
        if resource is not None:
            context.made[f"coverage/{index}"] = context.entries.add(
                f"coverage/{index}", resource)


def _coverage(context: Context, index: int, insurance: Mapping[str, Any]) -> Json | None:
    subscriber = section(insurance, "subscriber")
    relationship = section(subscriber, "relationship")
    payer = section(insurance, "payer")
    employer = section(insurance, "employer")
    group = text(insurance.get("group_number"))
    carried = compact({
        "extension": [{"url": SUBSCRIBER_ID, "valueIdentifier": identifier(i)}
                      for _, i in items(subscriber, "identifiers") if identifier(i)],
        "identifier": _identifiers(insurance),
        "type": concept(insurance.get("plan_type")),
        "policyHolder": parties.organization(
            context.entries, employer.get("name"), employer.get("id")),
        "subscriber": _subscriber(context, index, subscriber),
        "relationship": mapped_concept("relationship", relationship, "0063"),
        "period": compact({"start": fhir_datetime(insurance.get("start")),
                           "end": fhir_datetime(insurance.get("end"))}),
        "payor": [parties.organization(context.entries, payer.get("name"), payer.get("id"),
                                       payer.get("assigning_authority"))],
        "class": [compact({
            "type": {"coding": [{"system": _CLASS_SYSTEM, "code": "group"}]},
            "value": group, "name": text(insurance.get("group_name"))})] if group else None,
    })
    if not carried:
        return None
    return {
        "resourceType": "Coverage",
        **({"extension": carried.pop("extension")} if "extension" in carried else {}),
        "_status": absent(),
        "beneficiary": context.subject or absent(),
        "payor": carried.pop("payor", None) or [absent()],
        **carried,
    }


def _identifiers(insurance: Mapping[str, Any]) -> list[Json]:
    """IN1-2 (the plan, the IG's CWE[Identifier]), IN1-36 (the policy number) and the
    IN2 Medicare and Medicaid numbers."""
    plan = section(insurance, "plan")
    plan_system = codes.system_uri(plan["system"]) if text(plan.get("system")) else None
    return [
        compact({"system": plan_system, "value": text(plan.get("code"))}),
        compact({"value": text(insurance.get("policy_number"))}),
        _typed(insurance.get("medicare_number"), "MC", _MEDICARE_SYSTEM),
        _typed(insurance.get("medicaid_number"), "MA", None),
    ]


def _typed(value: Any, type_code: str, system: str | None) -> Json:
    if not text(value):
        return {}
    return compact({"type": {"coding": [{"system": codes.IDENTIFIER_TYPE_SYSTEM,
                                         "code": type_code}]},
                    "system": system, "value": value})


def _subscriber(context: Context, index: int, subscriber: Mapping[str, Any]) -> Json | None:
    """The patient when IN1-17 says the insured is the patient (SEL), else a
    RelatedPerson of the insured (IN1[Coverage] rows 16)."""
    relationship = section(subscriber, "relationship")
    if text(relationship.get("code")) == "SEL":
        return context.subject
    resource = related_person(
        {key: value for key, value in subscriber.items() if key != "relationship"},
        context.subject, [mapped_concept("relationship", relationship, "0063")])
    if resource is None:
        return None
    return context.entries.add(f"coverage/{index}/subscriber", resource)
