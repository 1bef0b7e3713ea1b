"""NK1 and PID-21 as FHIR R4 RelatedPerson resources (the v2-to-FHIR NK1[RelatedPerson]
and CX[RelatedPerson-Mother] maps): valid R4B, the patient referred to inside the
Bundle, the IG's concept maps, nothing the record does not hold, the same ids for the
same message. The helpers here serve test_coverage and test_accounts too."""

from __future__ import annotations

from typing import Any

from engine.fhir.entries import Entries
from engine.hl7v2 import parse
from engine.rules.catalog_entry import direct_identifiers_admitted
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import ROOT, by_url, checked_bundle, convert, mapper, resources

CONVERTER = ROOT / "tests" / "corpus" / "hl7v2" / "fhir-converter"
ADT_A01 = CONVERTER / "ADT-A01-01.hl7"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ABSENT = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                         "valueCode": "unknown"}]}


def message(*segments: str) -> str:
    return "\r".join(("MSH|^~\\&|APP|FAC|EHR|FAC|20240101120000||ADT^A08|C1|P|2.5",
                      "PID|1||12345^^^HOSP^MR||DOE^JANE||19800102|F", *segments))


def record_of(text: str) -> dict[str, Any]:
    return mapper().convert(parse(text.encode())).record


def bundle_of(record: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
    return checked_bundle(record, message_id)




def minimised(record: dict[str, Any], *paths: str) -> dict[str, Any]:
    return compile_scope(list(paths)).project(record)


def keyed(bundle: dict[str, Any], prefix: str, message_id: str = "m-1") -> list[dict[str, Any]]:
    """The resources added under keys ``{prefix}/{index}`` (``related_person/0``...)."""
    urls = {Entries(message_id).url(f"{prefix}/{index}") for index in range(20)}
    return [entry["resource"] for entry in bundle.get("entry", ()) if entry["fullUrl"] in urls]


def kin_of(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The RelatedPersons the NK1 segments made."""
    return keyed(bundle, "related_person")


# ---- NK1 -> RelatedPerson ----------------------------------------------------------------

def test_an_nk1_gives_a_related_person_of_the_patient() -> None:
    bundle = bundle_of(convert(ADT_A01))
    [kin] = kin_of(bundle)
    assert by_url(bundle, kin["patient"])["resourceType"] == "Patient"
    assert kin["name"][0] == {"use": "usual", "family": "Evan", "given": ["ADAM", "A"],
                              "prefix": ["Dr."], "suffix": ["III"]}
    assert [n["family"] for n in kin["name"]] == ["Evan", "Green", "Josh"]  # NK1-2, NK1-30
    # NK1-3 EMC through the Relationship concept map, the code as sent beside it; NK1-7
    # O through the ContactRole map.
    assert kin["relationship"] == [
        {"coding": [{"system": V2_0131, "code": "C", "display": "Emergency Contact"},
                    {"code": "EMC", "display": "test"}]},
        {"coding": [{"system": V2_0131, "code": "O", "display": "Other"}]}]
    assert kin["period"] == {"start": "2021-08-18", "end": "2021-12-18"}
    assert kin["gender"] == "female"
    assert kin["birthDate"] == "1962-01-10"  # NK1-16 is a DTM: FHIR keeps the date
    assert kin["communication"] == [{"language": {"coding": [{"code": "ara"}]}}]
    assert {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                 "code": "SS"}]},
            "system": "http://hl7.org/fhir/sid/us-ssn", "value": "Security no-23"
            } in kin["identifier"]  # NK1-37
    assert [i["value"] for i in kin["identifier"]] == [
        "12345567", "I-123", "I-222", "Security no-23"]  # NK1-12, NK1-33, NK1-37
    assert kin["address"][0]["city"] == "GREENSBORO"
    # NK1-6, the business phone: the IG assigns use work whatever XTN-2 says.
    assert {"system": "pager", "value": "6666666", "use": "work"} in kin["telecom"]
    assert {"system": "phone", "value": "88888888", "use": "work"} in kin["telecom"]
    assert {"system": "phone", "value": "121111", "use": "mobile"} in kin["telecom"]


def test_the_relationship_system_defaults_to_table_0063() -> None:
    [kin] = kin_of(bundle_of(record_of(message("NK1|1|ROE^ANN|SPO^Spouse"))))
    assert kin["relationship"] == [{"coding": [
        {"system": ROLE_CODE, "code": "SPS", "display": "spouse"},
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0063", "code": "SPO",
         "display": "Spouse"}]}]


def test_an_employer_or_agency_is_no_related_person() -> None:
    # The IG's ADT_A01 map, row 15.1: IF NK1-3.1 NOT IN ("EMR", "E", "F", "I", "S").
    record = record_of(message("NK1|1|ACME INC|EMR^Employer", "NK1|2|ROE^ANN|SIS^Sister"))
    assert len(record["related_persons"]) == 2
    [kin] = kin_of(bundle_of(record))
    assert kin["name"] == [{"family": "ROE", "given": ["ANN"]}]


def test_pid_21_gives_the_mother() -> None:
    bundle = bundle_of(convert(ADT_A01))
    [mother] = [by_url(bundle, {"reference": Entries("m-1").url("related_person/mother")})]
    assert mother["identifier"] == [{"type": {"text": "AND"}, "value": "1212121",
                                     "assigner": {"display": "NTH"}}]
    assert mother["relationship"] == [{"coding": [
        {"system": ROLE_CODE, "code": "MTH", "display": "mother"}]}]
    assert by_url(bundle, mother["patient"])["resourceType"] == "Patient"


def test_a_message_without_nk1_or_pid_21_has_no_related_person() -> None:
    assert resources(bundle_of(record_of(message())), "RelatedPerson") == []


# ---- minimum necessary, determinism, validators ------------------------------------------

def test_a_scope_without_related_persons_gives_none() -> None:
    record = minimised(convert(ADT_A01), "patient.names", "patient.identifiers",
                       "encounter")
    assert resources(bundle_of(record), "RelatedPerson") == []


def test_a_scope_with_some_fields_gives_only_those() -> None:
    record = minimised(convert(ADT_A01), "related_persons[*].relationship")
    assert resources(bundle_of(record), "RelatedPerson") == []  # a relationship alone
    record = minimised(convert(ADT_A01), "related_persons[*].names",
                       "related_persons[*].relationship")
    [kin] = resources(bundle_of(record), "RelatedPerson")
    assert set(kin) == {"resourceType", "id", "patient", "relationship", "name"}
    assert kin["patient"] == ABSENT  # the scope has no patient to refer to


def test_relatives_are_direct_identifiers() -> None:
    admitted = {path for _, path in direct_identifiers_admitted(["related_persons"])}
    assert {"related_persons.names", "related_persons.addresses", "related_persons.telecom",
            "related_persons.identifiers", "related_persons.ssn"} <= admitted
    assert direct_identifiers_admitted(["related_persons[*].relationship"]) == []
    assert direct_identifiers_admitted(["patient.mother_identifiers"]) != []


def test_the_same_message_gives_the_same_ids() -> None:
    record = convert(ADT_A01)
    first, again = bundle_of(record, "m-7"), bundle_of(record, "m-7")
    urls = [e["fullUrl"] for e in first["entry"] if e["resource"]["resourceType"] ==
            "RelatedPerson"]
    assert urls == [e["fullUrl"] for e in again["entry"]
                    if e["resource"]["resourceType"] == "RelatedPerson"]
    other = bundle_of(record, "m-8")
    assert not set(urls) & {e["fullUrl"] for e in other["entry"]}


def test_medplum_accepts_the_related_persons(fhir_validator) -> None:
    checked = 0
    for name in ("ADT-A01-01", "ADT-A06-01", "ADT04-28", "IZ_1_1.1_Admin_Child_Max_Message"):
        for person in resources(bundle_of(convert(CONVERTER / f"{name}.hl7")),
                                "RelatedPerson"):
            assert fhir_validator.validate(person) == [], name
            checked += 1
    assert checked >= 6
