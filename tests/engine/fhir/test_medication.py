"""Pharmacy messages to FHIR: RXO to a MedicationRequest as placed (the IG's RXO and RXR
[MedicationRequest] maps), RXE to the pharmacy's MedicationRequest based on it, RXD to
a MedicationDispense, each naming its drug by a Medication; whole, minimised, twice."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle

from engine.fhir import encode_bundle
from engine.hl7v2 import parse
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import mapper, resources
from tests.samples import CORPUS

CONVERTER = CORPUS / "fhir-converter"
RDS, RDE, ORM = (CONVERTER / f"{name}.hl7" for name in ("RDS-O13-01", "RDE-O11-01", "ORM-O01-06"))
V2 = "http://terminology.hl7.org/CodeSystem/v2-"
NDC = "http://hl7.org/fhir/sid/ndc"


def record_of(text: bytes) -> dict:
    return mapper().convert(parse(text)).record


def bundle_of(record: dict, message_id: str = "rx-1") -> dict:
    bundle = encode_bundle(record, message_id)
    Bundle.model_validate(bundle)
    return bundle



def by_url(bundle: dict, reference: dict) -> dict:
    found = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"]]
    assert len(found) == 1, reference
    return found[0]


def requests(bundle: dict) -> dict[str, dict]:
    return {r["intent"]: r for r in resources(bundle, "MedicationRequest")}


def test_rxo_gives_the_order_as_placed_with_the_igs_elements() -> None:
    bundle = bundle_of(record_of(RDS.read_bytes()))
    placed = requests(bundle)["original-order"]
    assert placed["status"] == "active"  # ORC-1 NW through the OrderControlCode map
    assert placed["identifier"] == [{"type": {"coding": [{"system": V2 + "0203",
                                                          "code": "PLAC"}]},
                                     "value": "1163422591"}]
    assert placed["authoredOn"] == "2019-11-04T06:27:26+02:15"
    assert by_url(bundle, placed["subject"])["resourceType"] == "Patient"
    assert by_url(bundle, placed["encounter"])["resourceType"] == "Encounter"
    medication = by_url(bundle, placed["medicationReference"])
    assert without_id(medication) == {"resourceType": "Medication", "code": {"coding": [
        {"system": NDC, "code": "01151327", "display": "Doxycycline"}]}}
    tablet = {"unit": "Tablet", "system": "http://snomed.info/sct", "code": "385055001"}
    [dosage] = placed["dosageInstruction"]
    assert dosage["doseAndRate"] == [{
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                             "code": "ordered"}]},
        "doseRange": {"low": {"value": 1, **tablet}, "high": {"value": 2, **tablet}}}]
    assert dosage["route"] == {"coding": [{"code": "IV", "display": "Intravenous"}]}
    assert placed["substitution"] == {"allowedCodeableConcept": {"coding": [
        {"system": V2 + "0161", "code": "G"}]}}
    assert placed["dispenseRequest"] == {"quantity": {"value": 6, **tablet},
                                         "numberOfRepeatsAllowed": 1}
    requester = by_url(bundle, placed["requester"])  # RXO-14, ORC-12 being empty
    assert requester["name"] == [{"family": "Jane", "given": ["Warn"]}]


def test_rxe_gives_the_pharmacys_order_based_on_the_order_as_placed() -> None:
    bundle = bundle_of(record_of(RDE.read_bytes()))
    placed, encoded = requests(bundle)["original-order"], requests(bundle)["filler-order"]
    assert by_url(bundle, encoded["basedOn"][0]) is placed
    assert {"type": {"text": "Prescription number"}, "value": "PN15"} in encoded["identifier"]
    medication = by_url(bundle, encoded["medicationReference"])
    assert medication["code"]["coding"][0]["code"] == "0143963401"
    assert medication["form"] == {"coding": [{"code": "128", "display": "Dosage form"}]}
    [dosage] = encoded["dosageInstruction"]
    assert dosage["doseAndRate"][0]["rateQuantity"] == {"value": 23, "unit": "mL/hr"}
    assert dosage["site"] == {"coding": [{"code": "HAND", "display": "HAND"}]}
    assert encoded["dispenseRequest"] == {"quantity": {"value": 3, "unit": "Bag"},
                                          "numberOfRepeatsAllowed": 12}


def test_rxd_gives_a_dispense_against_the_pharmacys_order() -> None:
    bundle = bundle_of(record_of(RDS.read_bytes()))
    [dispense] = resources(bundle, "MedicationDispense")
    assert dispense["status"] == "unknown"  # RXD says nothing of the dispense's state
    assert by_url(bundle, dispense["authorizingPrescription"][0]) is requests(bundle)[
        "filler-order"]
    assert dispense["whenHandedOver"] == "2020-12-12"
    assert dispense["quantity"]["value"] == 10
    assert dispense["type"] == {"coding": [{"system": V2 + "0484", "code": "R"}]}
    assert dispense["dosageInstruction"] == [{"route": {"coding": [
        {"system": V2 + "0162", "code": "PO", "display": "oral"}]}}]
    assert by_url(bundle, dispense["subject"])["resourceType"] == "Patient"
    assert by_url(bundle, dispense["context"])["resourceType"] == "Encounter"
    assert by_url(bundle, dispense["performer"][0]["actor"])["identifier"][0]["value"] == (
        "9941339108")
    assert by_url(bundle, dispense["medicationReference"])["form"]["coding"][0]["code"] == (
        "385055001")


def test_a_dispense_whose_prescription_is_not_in_the_message_names_it() -> None:
    record = record_of(RDS.read_bytes())
    del record["pharmacy_orders"]
    [dispense] = resources(bundle_of(record), "MedicationDispense")
    assert dispense["authorizingPrescription"] == [{"type": "MedicationRequest", "identifier": {
        "type": {"text": "Prescription number"}, "value": "PN12345"}}]


@pytest.mark.parametrize(("orc_1", "orc_5", "status"), [
    ("NW", "", "active"),
    ("OC", "", "stopped"),  # revoked in the IG's map
    ("HR", "", "on-hold"),
    ("SC", "CM", "completed"),  # ORC-5 first
    ("NW", "ER", "entered-in-error"),
    ("XO", "", "unknown"),  # the IG maps XO to no status
])
def test_status_from_the_order_status_else_the_order_control(
        orc_1: str, orc_5: str, status: str) -> None:
    message = "\r".join([
        "MSH|^~\\&|CPOE|HOSP|RX|HOSP|202001011200||OMP^O09^OMP_O09|M1|P|2.5.1",
        "PID|1||123^^^HOSP^MR||Doe^Jane",
        f"ORC|{orc_1}|P1|||{orc_5}",
        "RXO|00047040230^Ampicillin 250 mg caps^NDC|2||caps^capsule"]).encode()
    [placed] = resources(bundle_of(record_of(message)), "MedicationRequest")
    assert placed["status"] == status


def test_orm_with_rxo_gives_a_medication_request() -> None:
    bundle = bundle_of(record_of(ORM.read_bytes()))
    [placed] = resources(bundle, "MedicationRequest")
    assert by_url(bundle, placed["medicationReference"])["code"]["coding"][0]["code"] == (
        "00047040230")


def test_a_scope_without_the_pharmacy_sections_gives_none_of_their_resources() -> None:
    scoped = compile_scope(["patient", "encounter", "orders"]).project(
        record_of(RDS.read_bytes()))
    bundle = bundle_of(scoped)
    for resource_type in ("MedicationRequest", "MedicationDispense", "Medication"):
        assert resources(bundle, resource_type) == []


def test_a_scope_with_some_fields_gives_only_those() -> None:
    scoped = compile_scope(["patient.identifiers", "medication_orders[*].medication",
                            "medication_dispenses[*].amount"]).project(
        record_of(RDS.read_bytes()))
    bundle = bundle_of(scoped)
    [placed] = resources(bundle, "MedicationRequest")
    assert set(placed) == {"resourceType", "id", "status", "intent", "medicationReference",
                           "subject"}
    assert placed["status"] == "unknown"
    [dispense] = resources(bundle, "MedicationDispense")
    assert set(dispense) == {"resourceType", "id", "status", "medicationCodeableConcept",
                             "subject", "quantity"}
    assert dispense["medicationCodeableConcept"]["extension"][0]["valueCode"] == "unknown"
    assert dispense["quantity"] == {"value": 10}
    assert len(resources(bundle, "Medication")) == 1
    assert resources(bundle, "Practitioner") == []


def test_an_order_minimised_to_nothing_it_carries_gives_no_resource() -> None:
    scoped = compile_scope(["patient", "medication_orders[*].control"]).project(
        record_of(RDS.read_bytes()))
    assert resources(bundle_of(scoped), "MedicationRequest") == []


def test_the_same_message_gives_the_same_ids() -> None:
    record = record_of(RDS.read_bytes())
    assert encode_bundle(record, "rx-1") == encode_bundle(record, "rx-1")
    first = {e["fullUrl"] for e in encode_bundle(record, "rx-1")["entry"]
             if e["resource"]["resourceType"].startswith("Medication")}
    second = {e["fullUrl"] for e in encode_bundle(record, "rx-2")["entry"]
              if e["resource"]["resourceType"].startswith("Medication")}
    assert len(first) == 6 and first.isdisjoint(second)  # 3 Medication, 2 requests, 1 dispense


def test_medplum_accepts_the_pharmacy_resources(fhir_validator) -> None:
    for path in (RDS, RDE, ORM):
        bundle = bundle_of(record_of(path.read_bytes()), path.stem)
        for resource_type in ("MedicationRequest", "MedicationDispense", "Medication"):
            for resource in resources(bundle, resource_type):
                assert fhir_validator.validate(resource) == [], (path.stem, resource_type)


def without_id(resource: dict) -> dict:
    """The resource without its id, which is a uuid derived from the message."""
    return {key: value for key, value in resource.items() if key != "id"}
