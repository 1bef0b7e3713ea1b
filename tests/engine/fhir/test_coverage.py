"""IN1 (and IN2) as FHIR R4 Coverage resources (the v2-to-FHIR IN1[Coverage] map): the
payer and the group employer as Organizations, the insured as the patient or a
RelatedPerson, the patient as beneficiary; valid R4B, references resolving, nothing the
record does not hold, the same ids for the same message."""

from __future__ import annotations

from engine.rules.catalog_entry import direct_identifiers_admitted
from tests.engine.fhir.corpus import convert
from tests.engine.fhir.test_related_persons import (
    ABSENT,
    ADT_A01,
    CONVERTER,
    ROLE_CODE,
    bundle_of,
    by_url,
    message,
    minimised,
    record_of,
    resources,
)

SUBSCRIBER_ID = "http://hl7.org/fhir/5.0/StructureDefinition/extension-subscriberId"


def test_an_in1_gives_a_coverage_of_the_patient() -> None:
    bundle = bundle_of(convert(ADT_A01))
    [coverage] = resources(bundle, "Coverage")
    assert by_url(bundle, coverage["beneficiary"])["resourceType"] == "Patient"
    # The IG assigns no status and FHIR's value set has no "unknown".
    assert coverage["_status"] == ABSENT and "status" not in coverage
    [payor] = [by_url(bundle, reference) for reference in coverage["payor"]]
    assert payor["name"] == "Blue Cross Blue Shield of Texas"  # IN1-4
    assert payor["identifier"][0]["value"] == "IC-1.31"  # IN1-3
    assert by_url(bundle, coverage["policyHolder"])["name"] == "Sam P. Hil"  # IN1-11
    assert coverage["period"] == {"start": "1989-10-01", "end": "2050-10-01"}
    assert coverage["type"] == {"coding": [{"code": "HMO", "display":
                                            "health maintenance organization policy"}]}
    assert [i["value"] for i in coverage["identifier"]] == [
        "BAV", "PN-145", "Medicare-12345", "MCN-008"]  # IN1-2, IN1-36, IN2-6, IN2-8
    assert coverage["class"] == [{"type": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group"}]},
        "value": "PUBSUMB", "name": "SelfPay"}]
    assert coverage["extension"] == [{"url": SUBSCRIBER_ID, "valueIdentifier": {
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                             "code": "NI"}]},
        "value": "HMO-12345", "assigner": {"display": "2.16.840.1.113883.1.3"}}}]  # IN1-49
    assert coverage["relationship"]["coding"][0] == {
        "system": ROLE_CODE, "code": "SPS", "display": "spouse"}  # IN1-17 SPO


def test_the_insured_is_a_related_person_unless_the_patient() -> None:
    bundle = bundle_of(convert(ADT_A01))
    [coverage] = resources(bundle, "Coverage")
    insured = by_url(bundle, coverage["subscriber"])
    assert insured["resourceType"] == "RelatedPerson"
    assert insured["name"][0]["family"] == "Doe"  # IN1-16
    assert insured["birthDate"] == "1975-02-28"  # IN1-18
    assert insured["gender"] == "female"  # IN1-43
    assert insured["address"][0]["city"] == "Midnight"  # IN1-19
    assert {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                 "code": "SS"}]},
            "system": "http://hl7.org/fhir/sid/us-ssn", "value": "425-57-9745"
            } in insured["identifier"]  # IN2-2
    assert by_url(bundle, insured["patient"]) is by_url(bundle, coverage["beneficiary"])

    bundle = bundle_of(record_of(message("IN1|1|P1^Plan One|77|ACME HEALTH|||||||||||"
                                         "|DOE^JANE|SEL^Self")))
    [coverage] = resources(bundle, "Coverage")
    assert coverage["subscriber"] == coverage["beneficiary"]
    assert resources(bundle, "RelatedPerson") == []


def test_each_in1_gives_its_coverage() -> None:
    bundle = bundle_of(convert(CONVERTER / "ADT01-23.hl7"))
    coverages = resources(bundle, "Coverage")
    assert [by_url(bundle, c["payor"][0])["name"] for c in coverages] == [
        "MEDICARE", "MEDICAL MUTUAL CALIF.", "SELF PAY"]


def test_a_scope_without_coverages_gives_none() -> None:
    record = minimised(convert(ADT_A01), "patient", "related_persons", "guarantors")
    assert resources(bundle_of(record), "Coverage") == []


def test_a_scope_with_some_fields_gives_only_those() -> None:
    record = minimised(convert(ADT_A01), "coverages[*].group_number", "coverages[*].start")
    bundle = bundle_of(record)
    [coverage] = resources(bundle, "Coverage")
    assert without_id(coverage) == {"resourceType": "Coverage", "_status": ABSENT,
                        "beneficiary": ABSENT, "payor": [ABSENT],
                        "period": {"start": "1989-10-01"},
                        "class": [{"type": {"coding": [{
                            "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                            "code": "group"}]}, "value": "PUBSUMB"}]}
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Coverage"]


def test_the_insured_and_the_policy_numbers_are_direct_identifiers() -> None:
    admitted = {path for _, path in direct_identifiers_admitted(["coverages"])}
    assert {"coverages.subscriber.names", "coverages.policy_number",
            "coverages.medicare_number", "coverages.employer"} <= admitted
    assert direct_identifiers_admitted(["coverages[*].payer", "coverages[*].plan"]) == []


def test_the_same_message_gives_the_same_ids() -> None:
    record = convert(ADT_A01)

    def coverage_urls(message_id: str) -> list[str]:
        return [e["fullUrl"] for e in bundle_of(record, message_id)["entry"]
                if e["resource"]["resourceType"] == "Coverage"]

    assert coverage_urls("m-3") == coverage_urls("m-3") != coverage_urls("m-4")


def test_medplum_accepts_the_coverages(fhir_validator) -> None:
    checked = 0
    for name in ("ADT-A01-01", "ADT01-23", "MDHHS-OML-O21-1", "ADT04-23"):
        bundle = bundle_of(convert(CONVERTER / f"{name}.hl7"))
        for coverage in resources(bundle, "Coverage"):
            assert fhir_validator.validate(coverage) == [], name
            checked += 1
    assert checked >= 6


def without_id(resource: dict) -> dict:
    """The resource without its id, which is a uuid derived from the message."""
    return {key: value for key, value in resource.items() if key != "id"}
