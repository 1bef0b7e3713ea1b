"""The patient's account as an Account resource (the v2-to-FHIR PID[Account] map:
PID-18 its identifier, status "active", the patient its subject), with its guarantors
(GT1, which the IG does not map: as FHIR-Converter, the party is an Organization when
GT1-21 names one, the patient when GT1-11 is SEL, else a RelatedPerson) and the
Coverages made from IN1; and the account a merge retires (MRG[Account]: MRG-3, status
"unknown").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir import parties
from engine.fhir.concept_maps import mapped_concept
from engine.fhir.elements import Json, compact, identifier, items, section, text
from engine.fhir.entries import Context
from engine.fhir.related_persons import related_person
from engine.fhir.times import fhir_datetime

__all__ = ["add_accounts"]


def add_accounts(context: Context) -> None:
    """The patient's Account when the record holds its number or a guarantor, and the
    prior Account of a merge."""
    record, subject = context.record, context.subject
    patient = section(record, "patient")
    number = text(patient.get("account_number"))
    guarantors = [found for index, guarantor in items(record, "guarantors")
                  if (found := _guarantor(context, index, guarantor))]
    if number or guarantors:
        coverages = [{"coverage": reference} for key, reference in context.made.items()
                     if key.startswith("coverage/") and key.count("/") == 1]
        context.made["account"] = context.entries.add("account", compact({
            "resourceType": "Account",
            "identifier": [identifier({
                "value": number,
                "assigning_authority": patient.get("account_assigning_authority"),
                "type": patient.get("account_number_type")})] if number else None,
            "status": "active",
            "subject": [subject],
            "coverage": coverages,
            "guarantor": guarantors,
        }))
    prior = text(section(record, "merge").get("prior_account_number"))
    if prior:
        context.entries.add("account/prior", compact({
            "resourceType": "Account",
            "identifier": [{"value": prior}],
            "status": "unknown",
            "subject": [subject],
        }))


def _guarantor(context: Context, index: int, guarantor: Mapping[str, Any]) -> Json | None:
    """Account.guarantor: the party responsible and the period it is."""
    relationship = section(guarantor, "relationship")
    party: Json | None
    if text(guarantor.get("organization_name")):
        party = parties.organization(context.entries, guarantor["organization_name"])
    elif text(relationship.get("code")) == "SEL":
        party = context.subject
    else:
        resource = related_person(guarantor, context.subject,
                                  [mapped_concept("relationship", relationship, "0063")])
        party = context.entries.add(f"guarantor/{index}", resource) if resource else None
    if not party:
        return None
    return compact({"party": party, "period": compact({
        "start": fhir_datetime(guarantor.get("start")),
        "end": fhir_datetime(guarantor.get("end"))})})
