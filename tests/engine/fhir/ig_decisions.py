"""Where Switchboard's FHIR differs from FHIR-Converter's expected bundles because the
HL7 v2-to-FHIR IG decides otherwise, each with the IG table row that decides it
(tables of the IG's ``messages/`` and ``segments/`` sheets, named as the IG names them).

Two kinds, as issue 18 allows, each capped at 5% of what is compared:
- resource types FHIR-Converter makes that the IG does not map (EXCLUDED_TYPES, and
  per message EXCLUDED_IN_MESSAGE): left out of the type count;
- key fields where the IG's value differs (FIELD_DECISIONS): left out of the field
  count, and tests/engine/fhir/test_converter_comparison.py asserts Switchboard gives
  the IG's answer for each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

EXCLUDED_TYPES = {
    "ChargeItem": "FT1 has no FHIR target: ORM_O01 row 4.3 (ORDER.FT1), ORU_R01 row 4.2.5 "
                  "(ORDER_OBSERVATION.FT1), OML_O21 row 6.5 (ORDER.FT1)",
    "ResearchStudy": "CTI has no FHIR target: ORM_O01 row 4.4, ORU_R01 row 4.2.6, OML_O21 "
                     "row 6.6 (Clinical Trial Identification)",
    "Consent": "CON has no FHIR target: MDM_T02 row 9 (Consent Segment)",
    "ClaimResponse": "AUT has no FHIR target: ADT_A01 row 29.6.1 (INSURANCE.AUTHORIZATION.AUT)",
    "Substance": "SAC has no FHIR target: OML_O21 row 6.4.8.3.1 (SPECIMEN.CONTAINER.SAC)",
    "NutritionOrder": "ODS maps only when PID is not valued, and then to SupplyRequest: "
                      "ORM_O01 row 4.2.1.9",
    "SupplyRequest": "RQD has no FHIR target: ORM_O01 row 4.2.1.3 (ORDER_DETAIL.CHOICE.RQD)",
    "Task": "no IG map makes a Task of RDE^O25 (FHIR-Converter's own example.com code)",
}

# (message, type): made by FHIR-Converter from a segment the IG leaves unmapped.
_FT1 = "from FT1, which has no FHIR target (ORM_O01 row 4.3, ORU_R01 row 4.2.5)"
_SIU = ("a ServiceRequest only IF SCH-26 or SCH-27 VALUED, and neither is: SIU_S12 rows 2 "
        "(SCH -> SCH[ServiceRequest]) and 5.2.1 (AIS -> AIS[ServiceRequest])")
_RF1 = "RF1 in ADT has no FHIR target: ADT_A01 row 29.7.1 (INSURANCE.REFERRAL.RF1)"
EXCLUDED_IN_MESSAGE = {
    **{(stem, "ServiceRequest"): _SIU for stem in (
        "SIU-S12-01", "SIU-S13-01", "SIU-S14-01", "SIU-S15-01", "SIU-S16-01", "SIU-S17-01",
        "SIU-S26-01")},
    **{(stem, "ServiceRequest"): _RF1 for stem in (
        "ADT-A01-01", "ADT-A03-01", "ADT-A04-01", "ADT-A05-01", "ADT-A08-01", "ADT-A13-01",
        "ADT-A14-01", "ADT-A16-01", "ADT-A28-01", "ADT-A31-01")},
    **{(stem, "MedicationDispense"): _FT1 for stem in (
        "DFT-P03-01", "DFT-P11-01", "OMG-O19-01", "OML-O21-01", "ORM-O01-01", "ORM-O01-03",
        "ORM-O01-04", "ORM-O01-05", "ORM-O01-06", "ORU-R01-01", "RDE-O11-01")},
}


@dataclass(frozen=True)
class FieldDecision:
    """Key fields of FHIR-Converter's that the IG decides against, found by ``applies``
    (message name, key field) and shown by ``check`` (Switchboard's bundle, the
    message's record) to hold the IG's answer instead."""

    name: str
    ig_row: str
    applies: Callable[[str, tuple[str, ...]], bool]
    check: Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


def _types(bundle: Mapping[str, Any]) -> list[str]:
    return [entry["resource"]["resourceType"] for entry in bundle.get("entry", ())]


def _no_observation_but_the_document(bundle: Mapping[str, Any], record: Any) -> bool:
    return "Observation" not in _types(bundle) and "DocumentReference" in _types(bundle)


def _in2_on_the_coverage(bundle: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """The insured's IN2 numbers are on the Coverage, whose subscriber is not the
    patient (IN1-17 is not SEL), and not among the Patient's identifiers."""
    coverages = [e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "Coverage"]
    patients = [e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Patient"]
    on_patient = {i.get("value") for p in patients for i in p.get("identifier", ())}
    on_coverage = {i.get("value") for c in coverages for i in c.get("identifier", ())}
    return bool(coverages) and not (_in2_numbers(record) & on_patient) and (
        _in2_numbers(record) - {"PNM1234", "MB-12345"} <= on_coverage)


def _in2_numbers(record: Mapping[str, Any]) -> set[str]:
    found = set()
    for coverage in record.get("coverages", ()):
        for key in ("medicare_number", "medicaid_number"):
            if coverage.get(key):
                found.add(coverage[key])
    return found


IN2_NUMBERS = frozenset({"Medicare-12345", "MCN-008", "MI-12345", "PNM1234", "MB-12345"})

FIELD_DECISIONS = (
    FieldDecision(
        "MDM OBX are the document's text, not Observations",
        "MDM_T02 row 10.1 (OBSERVATION.OBX -> OBX[DocumentReference])",
        lambda stem, field: stem.startswith("MDM-") and field[0] == "observation",
        _no_observation_but_the_document),
    FieldDecision(
        "the insured's IN2 numbers belong to the subscriber, a spouse here, not the patient",
        "ADT_A01 row 29.2 (INSURANCE.IN2: no FHIR target); IN1[Coverage] IN1-17: a "
        "subscriber other than SEL is a RelatedPerson",
        lambda stem, field: field[0] == "patient.identifier" and field[1] in IN2_NUMBERS,
        _in2_on_the_coverage),
)
