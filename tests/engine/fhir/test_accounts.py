"""PID-18, GT1 and MRG-3 as FHIR R4 Account resources (the v2-to-FHIR PID[Account] and
MRG[Account] maps; GT1 as FHIR-Converter makes it), and PV1-54 as an EpisodeOfCare
(PV1[Encounter] row 54): valid R4B, references resolving inside the Bundle, nothing
the record does not hold, the same ids for the same message."""

from __future__ import annotations

from engine.fhir.entries import Entries
from engine.rules.catalog_entry import direct_identifiers_admitted
from tests.engine.fhir.corpus import convert
from tests.engine.fhir.test_related_persons import (
    ABSENT,
    ADT_A01,
    CONVERTER,
    ROLE_CODE,
    bundle_of,
    by_url,
    keyed,
    message,
    minimised,
    record_of,
    resources,
)

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def account_of(bundle: dict) -> dict:
    return by_url(bundle, {"reference": Entries("m-1").url("account")})


# ---- PID-18 and GT1 -> Account -----------------------------------------------------------

def test_pid_18_gives_the_patients_account() -> None:
    bundle = bundle_of(convert(ADT_A01))
    account = account_of(bundle)
    assert account["identifier"] == [{"type": {"coding": [{"system": V2_0203, "code": "VN"}]},
                                      "value": "4000776", "assigner": {"display": "AccMgr"}}]
    assert account["status"] == "active"  # PID[Account] assigns it
    [subject] = account["subject"]
    assert by_url(bundle, subject)["resourceType"] == "Patient"
    [coverage] = account["coverage"]
    assert by_url(bundle, coverage["coverage"])["resourceType"] == "Coverage"


def test_a_guarantor_who_is_the_patient() -> None:
    account = account_of(bundle := bundle_of(convert(ADT_A01)))  # GT1-11 SEL
    assert account["guarantor"] == [{"party": account["subject"][0],
                                     "period": {"start": "2001-04-10", "end": "2001-04-15"}}]
    assert keyed(bundle, "guarantor") == []


def test_a_guarantor_who_is_a_relative() -> None:
    bundle = bundle_of(convert(CONVERTER / "ADT-A06-01.hl7"))  # GT1-11 BRO
    [guarantor] = account_of(bundle)["guarantor"]
    person = by_url(bundle, guarantor["party"])
    assert person["resourceType"] == "RelatedPerson"
    assert person["name"] == [{"family": "RADIANT", "given": ["LUCY"]}]  # GT1-3
    assert person["relationship"][0]["coding"][0] == {
        "system": ROLE_CODE, "code": "BRO", "display": "brother"}
    assert person["birthDate"] == "2001-04-12"  # GT1-8
    assert person["identifier"][-1]["value"] == "G-SSN-12"  # GT1-12
    assert {"system": "other", "value": "021212", "use": "work"} in person["telecom"]
    assert by_url(bundle, person["patient"])["resourceType"] == "Patient"


def test_a_guarantor_organization() -> None:
    bundle = bundle_of(convert(CONVERTER / "MDHHS-OML-O21-1.hl7"))  # GT1-21 Walmart
    account = account_of(bundle)
    assert "identifier" not in account  # no PID-18: the guarantor alone makes it
    [guarantor] = account["guarantor"]
    assert without_id(by_url(bundle, guarantor["party"])) == {"resourceType": "Organization",
                                                  "name": "Walmart"}


def test_no_account_number_and_no_guarantor_give_no_account() -> None:
    assert resources(bundle_of(record_of(message("PV1|1|I"))), "Account") == []


def test_mrg_3_gives_the_prior_account() -> None:
    bundle = bundle_of(convert(CONVERTER / "ADT-A45-01.hl7"))
    prior = by_url(bundle, {"reference": Entries("m-1").url("account/prior")})
    assert prior["identifier"] == [{"value": "PACCT002"}]
    assert prior["status"] == "unknown"  # MRG[Account] assigns it
    assert prior["subject"] == account_of(bundle)["subject"]


def test_a_scope_without_the_account_gives_none() -> None:
    record = minimised(convert(ADT_A01), "patient.names", "patient.identifiers",
                       "coverages")
    assert resources(bundle_of(record), "Account") == []


def test_a_scope_with_the_account_number_only() -> None:
    [account] = resources(bundle_of(minimised(convert(ADT_A01), "patient.account_number")),
                          "Account")
    assert without_id(account) == {"resourceType": "Account", "identifier": [{"value": "4000776"}],
                       "status": "active"}


def test_guarantors_and_episodes_are_direct_identifiers() -> None:
    admitted = {path for _, path in direct_identifiers_admitted(["guarantors", "encounter"])}
    assert {"guarantors.names", "guarantors.ssn", "guarantors.addresses",
            "encounter.episode_identifier"} <= admitted
    assert direct_identifiers_admitted(["guarantors[*].relationship"]) == []


# ---- PV1-54 -> EpisodeOfCare -------------------------------------------------------------

def test_pv1_54_gives_the_encounters_episode_of_care() -> None:
    bundle = bundle_of(convert(ADT_A01))
    [episode] = resources(bundle, "EpisodeOfCare")
    assert episode["identifier"] == [{"type": {"coding": [{"system": V2_0203, "code": "MR"}]},
                                      "value": "EOC124", "assigner": {"display": "Etest"}}]
    assert episode["_status"] == ABSENT and "status" not in episode
    assert by_url(bundle, episode["patient"])["resourceType"] == "Patient"
    [encounter] = resources(bundle, "Encounter")
    [link] = encounter["episodeOfCare"]
    assert by_url(bundle, link) is episode
    [diagnosis] = episode["diagnosis"]  # DG1[EpisodeOfCare]
    assert by_url(bundle, diagnosis["condition"])["resourceType"] == "Condition"


def test_pv1_54_alone_gives_the_encounter_and_its_episode() -> None:
    record = minimised(convert(ADT_A01), "encounter.episode_identifier")
    bundle = bundle_of(record)
    [encounter] = resources(bundle, "Encounter")
    [episode] = resources(bundle, "EpisodeOfCare")
    assert by_url(bundle, encounter["episodeOfCare"][0]) is episode
    assert episode["patient"] == ABSENT and "diagnosis" not in episode


def test_a_scope_without_the_episode_gives_none() -> None:
    record = minimised(convert(ADT_A01), "patient", "encounter.visit_number",
                       "diagnoses")
    bundle = bundle_of(record)
    assert resources(bundle, "EpisodeOfCare") == []
    assert "episodeOfCare" not in resources(bundle, "Encounter")[0]


def test_the_same_message_gives_the_same_ids() -> None:
    record = convert(ADT_A01)

    def urls(message_id: str) -> list[str]:
        return [e["fullUrl"] for e in bundle_of(record, message_id)["entry"]
                if e["resource"]["resourceType"] in ("Account", "EpisodeOfCare")]

    assert len(urls("m-5")) == 2
    assert urls("m-5") == urls("m-5") != urls("m-6")


def test_medplum_accepts_the_accounts_and_episodes(fhir_validator) -> None:
    checked = 0
    for name in ("ADT-A01-01", "ADT-A06-01", "ADT-A45-01", "MDHHS-OML-O21-1"):
        bundle = bundle_of(convert(CONVERTER / f"{name}.hl7"))
        for kind in ("Account", "EpisodeOfCare"):
            for resource in resources(bundle, kind):
                assert fhir_validator.validate(resource) == [], (name, kind)
                checked += 1
    assert checked >= 6


def without_id(resource: dict) -> dict:
    """The resource without its id, which is a uuid derived from the message."""
    return {key: value for key, value in resource.items() if key != "id"}
