"""The people and payers around the patient read back into the canonical record:
RelatedPerson (related persons, the mother's identifiers), Coverage (coverages and
their insured), Account (the account number, guarantors, a merge's prior account) and
PractitionerRole (roles). The inverse of :mod:`engine.fhir.related_persons`,
:mod:`engine.fhir.coverage`, :mod:`engine.fhir.accounts` and :mod:`engine.fhir.roles`.

A RelatedPerson that a Coverage names as its insured, or an Account as its guarantor,
is that insured or guarantor, not one of the patient's related persons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.fhir import codes
from engine.fhir.coverage import SUBSCRIBER_ID
from engine.fhir.document import References, Resource, first, get
from engine.fhir.elements import compact
from engine.fhir.read_values import (
    address,
    code_or_text,
    coded,
    coding,
    each,
    identifier,
    name,
    of_type,
    organization,
    person,
    referenced,
    telecoms,
)
from engine.fhir.times import canonical_time

__all__ = ["people_sections"]

_MOTHER = "MTH"
_ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_CONTACT_ROLE_TABLE = codes.V2 + "0131"
_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-class"
_SELF = {"code": "SEL"}


def people_sections(resources: list[Resource], references: References,
                    patient: Resource | None) -> dict[str, Any]:
    """related_persons, coverages, guarantors, roles, and the fields of the patient
    (``patient``) and merge (``merge``) these resources hold."""
    coverages = of_type(resources, "Coverage")
    accounts = of_type(resources, "Account")
    current = next((a for a in accounts if a.get("status") != "unknown"), None)
    prior = next((a for a in accounts if a.get("status") == "unknown"), None)
    named = {id(target) for reference in _party_references(coverages, current)
             if (target := references.resolve(reference)) is not None}
    kin = [r for r in of_type(resources, "RelatedPerson") if id(r) not in named]
    mothers = [r for r in kin if _is_mother(r)]
    account_id = first(get(current, "identifier")) or {}
    return {
        "related_persons": each(_related_person, [r for r in kin if not _is_mother(r)]),
        "coverages": each(lambda c: _coverage(c, references, patient), coverages),
        "guarantors": each(lambda g: _guarantor(g, references, patient),
                           get(current, "guarantor")),
        "roles": _roles(resources, references),
        "patient": compact({
            "mother_identifiers": [identifier(i) for m in mothers[:1]
                                   for i in m.get("identifier") or ()],
            "account_number": account_id.get("value"),
            "account_assigning_authority": identifier(account_id).get("assigning_authority"),
            "account_number_type": identifier(account_id).get("type"),
        }),
        "merge": compact({"prior_account_number": get(first(get(prior, "identifier")),
                                                      "value")}),
    }


def _party_references(coverages: list[Resource], account: Resource | None) -> list[Any]:
    return ([coverage.get("subscriber") for coverage in coverages]
            + [get(guarantor, "party") for guarantor in get(account, "guarantor") or ()])


def _is_mother(related: Resource) -> bool:
    """The mother PID-21 identifies: named by identifier alone, with the one coding
    v3 RoleCode MTH (an NK1 mother has her name, and her relationship as sent)."""
    codings = [found for concept in related.get("relationship") or ()
               for found in get(concept, "coding") or ()]
    return (len(codings) == 1 and get(codings[0], "code") == _MOTHER
            and get(codings[0], "system") == _ROLE_CODE_SYSTEM and not related.get("name"))


def _person_fields(related: Resource) -> dict[str, Any]:
    """What :func:`engine.fhir.related_persons.related_person` wrote of a person."""
    every = related.get("identifier") or []
    ssn = next((i.get("value") for i in every if i.get("system") == codes.US_SSN_SYSTEM), None)
    points = [p for p in related.get("telecom") or () if isinstance(p, Mapping)]
    # The work telephones follow the others, each with use "work" (the IG's NK1-6).
    split = len(points)
    while split and points[split - 1].get("use") == "work":
        split -= 1
    work = [{key: value for key, value in found.items() if key != "use"}
            for found in telecoms(points[split:])]
    return compact({
        "identifiers": [identifier(i) for i in every if i.get("system") != codes.US_SSN_SYSTEM],
        "ssn": ssn,
        "names": each(name, related.get("name")),
        "telecom": telecoms(points[:split]),
        "work_telecom": work,
        "gender": related.get("gender"),
        "birth_date": canonical_time(related.get("birthDate")),
        "addresses": each(address, related.get("address")),
        "start": canonical_time(get(related, "period", "start")),
        "end": canonical_time(get(related, "period", "end")),
        "language": coded(get(first(related.get("communication")), "language")),
    })


def _relationship(concept: Any) -> dict[str, Any]:
    """The code as sent of a concept :func:`engine.fhir.concept_maps.mapped_concept`
    made: its last coding (the concept map's coding comes first)."""
    return coding((get(concept, "coding") or [None])[-1])


def _related_person(related: Resource) -> dict[str, Any]:
    relationship, contact_role = None, None
    for concept in related.get("relationship") or ():
        # The code as sent comes last; a contact role sent without a system is in
        # table 0131 (the relationship concept map may give a 0131 code too, first).
        sent = (get(concept, "coding") or [None])[-1]
        if get(sent, "system") == _CONTACT_ROLE_TABLE and contact_role is None:
            contact_role = _relationship(concept)
        elif relationship is None:
            relationship = _relationship(concept)
    return compact({**_person_fields(related), "relationship": relationship,
                    "contact_role": contact_role})


def _coverage(coverage: Resource, references: References,
              patient: Resource | None) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    untyped = []
    for found in coverage.get("identifier") or ():
        kind = code_or_text(found.get("type"))
        if kind in ("MC", "MA"):
            typed.setdefault("medicare_number" if kind == "MC" else "medicaid_number",
                             found.get("value"))
        else:
            untyped.append(found)
    # IN1-2 (the plan, required in IN1) comes first, IN1-36 (the policy) after it.
    plan = next((i for i in untyped if i.get("system")), None) or first(untyped)
    policy = next((i for i in untyped if i is not plan), None)
    payer = references.resolve(first(coverage.get("payor")))
    payer_id = first(get(payer, "identifier")) or {}
    employer, employer_id = organization(coverage.get("policyHolder"), references)
    group: Resource = next((c for c in coverage.get("class") or ()
                  if get(first(get(c, "type", "coding")), "system") == _CLASS_SYSTEM), {})
    return compact({
        "plan": compact({"code": get(plan, "value"),
                         "system": coding({"system": get(plan, "system")}).get("system")}),
        "policy_number": get(policy, "value"),
        **typed,
        "plan_type": coded(coverage.get("type")),
        "employer": compact({"name": employer, "id": employer_id}),
        "payer": compact({"name": get(payer, "name"), "id": payer_id.get("value"),
                          "assigning_authority": identifier(payer_id).get(
                              "assigning_authority")})
        if get(payer, "resourceType") == "Organization" else None,
        "subscriber": _subscriber(coverage, references, patient),
        "start": canonical_time(get(coverage, "period", "start")),
        "end": canonical_time(get(coverage, "period", "end")),
        "group_number": group.get("value"),
        "group_name": group.get("name"),
    })


def _subscriber(coverage: Resource, references: References,
                patient: Resource | None) -> dict[str, Any]:
    insured = references.resolve(coverage.get("subscriber"))
    identifiers = [identifier(e["valueIdentifier"]) for e in coverage.get("extension") or ()
                   if e.get("url") == SUBSCRIBER_ID and isinstance(e.get("valueIdentifier"),
                                                                   Mapping)]
    relationship = _relationship(coverage.get("relationship"))
    if insured is not None and insured is patient:
        relationship = relationship or dict(_SELF)
        return compact({"identifiers": identifiers, "relationship": relationship})
    fields = _person_fields(insured) if insured is not None and get(
        insured, "resourceType") == "RelatedPerson" else {}
    return compact({**fields, "identifiers": fields.get("identifiers") or identifiers,
                    "relationship": relationship})


def _guarantor(guarantor: Resource, references: References,
               patient: Resource | None) -> dict[str, Any]:
    party = references.resolve(guarantor.get("party"))
    period = compact({"start": canonical_time(get(guarantor, "period", "start")),
                      "end": canonical_time(get(guarantor, "period", "end"))})
    if party is not None and party is patient:
        return {**period, "relationship": dict(_SELF)}
    if get(party, "resourceType") == "Organization":
        return compact({**period, "organization_name": get(party, "name")})
    if party is None or get(party, "resourceType") != "RelatedPerson":
        return period
    return compact({**_person_fields(party), **period, "relationship": _relationship(
        first(party.get("relationship")))})


def _roles(resources: list[Resource], references: References) -> list[dict[str, Any]]:
    """ROL segments: the PractitionerRoles no other resource names (those another
    names say who observed, ordered or directed what that resource is)."""
    # A Provenance targets, and a MessageHeader focuses on, what the message made.
    naming = [r for r in resources if r.get("resourceType") not in ("Provenance",
                                                                     "MessageHeader")]
    named = {id(target) for reference in referenced(naming)
             if (target := references.resolve({"reference": reference})) is not None}
    roles = [role for role in of_type(resources, "PractitionerRole") if id(role) not in named]
    return each(lambda r: _role(r, references), roles)


def _role(role: Resource, references: References) -> dict[str, Any]:
    return compact({
        "person": person(role.get("practitioner"), references),
        "role": coded(first(role.get("code"))),
        "begin": canonical_time(get(role, "period", "start")),
        "end": canonical_time(get(role, "period", "end")),
    })
