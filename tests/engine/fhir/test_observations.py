"""Results (OBX) to Observation after the v2-to-FHIR IG's OBX[Observation] and
OBX[Observation-Component] maps, linked to the order's ServiceRequest and the report's
DiagnosticReport as the IG's message maps link them."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from engine.fhir import encode_bundle
from engine.hl7v2 import parse
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import convert, mapper
from tests.samples import CORPUS

CONVERTER = CORPUS / "fhir-converter"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

ORU = "\r".join([
    "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240102030405+0100||ORU^R01^ORU_R01|C1|P|2.5.1",
    "PID|1||12345^^^HOSP^MR||DOE^JANE||19800102|F",
    "ORC|RE|PL-1|FL-1",
    "OBR|1|PL-1|FL-1|24331-1^Lipid panel^LN|||20240101080000+0100|||||||||||||||"
    "20240101120000+0100|||F",
    "OBX|1|NM|2093-3^Cholesterol^LN||212|mg/dL^milligrams per deciliter^UCUM|<200|H|||F|||"
    "20240101090000+0100||1234^LAB^ROBIN^^^^^^HOSP|MTH1^Enzymatic^L|ANALYZER-7^LABNET||"
    "BLD^Blood^L|||Central Lab",
    "OBX|2|NM|2085-9^HDL^LN||40~42|mg/dL^^UCUM|35-80|N|||F",
    "SPM|1|SP-1&LAB||BLD^Whole blood^HL70487|||||||||||||20240101075500+0100",
]) + "\r"


def bundle_of(text: str, message_id: str = "m-1", scope: list[str] | None = None) -> dict:
    record = mapper().convert(parse(text.encode())).record
    if scope is not None:
        record = compile_scope(scope).project(record)
    bundle = encode_bundle(record, message_id)
    Bundle.model_validate(bundle)
    return bundle


def resources(bundle: dict, resource_type: str) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle.get("entry", ())
            if entry["resource"]["resourceType"] == resource_type]


def url_of(bundle: dict, resource_type: str) -> list[str]:
    return [entry["fullUrl"] for entry in bundle.get("entry", ())
            if entry["resource"]["resourceType"] == resource_type]


def test_an_obx_gives_an_observation_with_the_igs_elements():
    bundle = bundle_of(ORU)
    cholesterol, hdl = resources(bundle, "Observation")
    assert cholesterol["code"] == {"coding": [{"system": "http://loinc.org", "code": "2093-3",
                                               "display": "Cholesterol"}]}
    assert cholesterol["status"] == "final"
    assert cholesterol["effectiveDateTime"] == "2024-01-01T09:00:00+01:00"
    assert cholesterol["valueQuantity"] == {
        "value": 212, "unit": "milligrams per deciliter",
        "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    assert cholesterol["interpretation"] == [{"coding": [{"system": V3_INTERPRETATION,
                                                          "code": "H"}]}]
    assert cholesterol["referenceRange"] == [{
        "high": {"value": 200, "unit": "milligrams per deciliter",
                 "system": "http://unitsofmeasure.org", "code": "mg/dL"}, "text": "<200"}]
    assert cholesterol["method"] == {"coding": [{"code": "MTH1", "display": "Enzymatic"}]}
    assert cholesterol["bodySite"] == {"coding": [{"code": "BLD", "display": "Blood"}]}
    assert hdl["referenceRange"][0]["low"]["value"] == 35
    assert hdl["referenceRange"][0]["high"]["value"] == 80
    assert hdl["referenceRange"][0]["text"] == "35-80"
    (patient,) = url_of(bundle, "Patient")
    assert cholesterol["subject"] == {"reference": patient}


def test_the_observations_parties_are_resources_of_their_own():
    bundle = bundle_of(ORU)
    cholesterol = resources(bundle, "Observation")[0]
    urls = {entry["fullUrl"]: entry["resource"] for entry in bundle["entry"]}
    performers = [urls[p["reference"]] for p in cholesterol["performer"]]
    assert [p["resourceType"] for p in performers] == ["PractitionerRole", "Organization"]
    observer = urls[performers[0]["practitioner"]["reference"]]
    assert observer["name"] == [{"family": "LAB", "given": ["ROBIN"]}]
    # the IG's OBX[Observation] OBX-16 row: a PractitionerRole of a responsible observer
    assert performers[0]["code"] == [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/practitioner-role",
        "code": "responsibleObserver"}]}]
    assert performers[1]["name"] == "Central Lab"
    device = urls[cholesterol["device"]["reference"]]
    assert device["resourceType"] == "Device"
    assert device["identifier"][0]["value"] == "ANALYZER-7"


def test_a_repeating_value_is_one_component_per_repetition():
    """OBX[Observation-Component]: 40~42 is two components with the OBX's code."""
    hdl = resources(bundle_of(ORU), "Observation")[1]
    assert "valueQuantity" not in hdl
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"])
            for c in hdl["component"]] == [("2085-9", 40), ("2085-9", 42)]
    assert hdl["component"][0]["valueQuantity"]["code"] == "mg/dL"


def test_a_result_is_based_on_its_order_and_reported_by_its_obrs_report():
    bundle = bundle_of(ORU)
    (order,), (report,) = url_of(bundle, "ServiceRequest"), resources(bundle, "DiagnosticReport")
    observations = url_of(bundle, "Observation")
    assert [o["basedOn"] for o in resources(bundle, "Observation")] == [
        [{"reference": order}]] * 2
    assert report["basedOn"] == [{"reference": order}]
    assert report["result"] == [{"reference": url} for url in observations]
    assert report["status"] == "final"  # OBR-25
    assert report["issued"] == "2024-01-01T12:00:00+01:00"
    assert report["effectiveDateTime"] == "2024-01-01T08:00:00+01:00"
    assert report["code"]["coding"][0]["code"] == "24331-1"


def test_every_obr_of_a_results_message_is_a_report_whatever_its_results_name():
    """ORU_R01 ORDER_OBSERVATION.OBR -> DiagnosticReport, also without an ORC or a
    placer number for the results to name."""
    text = ORU.replace("ORC|RE|PL-1|FL-1\r", "").replace("OBR|1|PL-1|FL-1|", "OBR|1|||")
    bundle = bundle_of(text)
    (report,) = resources(bundle, "DiagnosticReport")
    assert len(report["result"]) == 2


@pytest.mark.parametrize("name, count", [("VXU-V04-01", 5),
                                         ("IZ_1_1.1_Admin_Child_Max_Message", 4),
                                         ("BAR-P01-01", 1), ("DFT-P11-01", 1),
                                         ("RDE-O11-01", 1), ("OMG-O19-01", 10)])
def test_every_message_the_ig_maps_obx_for_gives_observations(name, count):
    bundle = encode_bundle(convert(CONVERTER / f"{name}.hl7"), name)
    Bundle.model_validate(bundle)
    assert len(resources(bundle, "Observation")) == count


def test_mdm_obx_is_the_document_not_an_observation():
    """MDM_T02 OBSERVATION.OBX -> OBX[DocumentReference]."""
    bundle = encode_bundle(convert(CONVERTER / "MDM-T02-01.hl7"), "m")
    assert resources(bundle, "Observation") == []
    assert resources(bundle, "DocumentReference")


def test_an_order_messages_results_are_the_orders_supporting_information():
    """OML_O21 and ORM_O01: ServiceRequest.supportingInfo = Observation."""
    bundle = bundle_of(ORU.replace("ORU^R01^ORU_R01", "ORM^O01^ORM_O01"))
    (order,) = resources(bundle, "ServiceRequest")
    assert order["supportingInfo"] == [{"reference": url}
                                       for url in url_of(bundle, "Observation")]
    assert all("basedOn" not in o for o in resources(bundle, "Observation"))
    assert resources(bundle, "DiagnosticReport") == []


def test_a_scope_without_results_sends_no_observation_and_one_with_codes_only_codes():
    assert resources(bundle_of(ORU, scope=["patient", "orders"]), "Observation") == []
    bundle = bundle_of(ORU, scope=["patient", "results[*].code", "results[*].value"])
    cholesterol = resources(bundle, "Observation")[0]
    assert set(cholesterol) == {"resourceType", "id", "status", "code", "subject", "valueQuantity"}
    assert cholesterol["status"] == "unknown"  # FHIR requires one; the scope has none
    assert resources(bundle, "Practitioner") == resources(bundle, "Organization") == []


def test_the_same_message_gives_the_same_ids():
    first, again, other = bundle_of(ORU, "m-1"), bundle_of(ORU, "m-1"), bundle_of(ORU, "m-2")
    assert first == again
    assert not set(url_of(first, "Observation")) & set(url_of(other, "Observation"))


def test_medplum_accepts_the_results(fhir_validator):
    bundle = bundle_of(ORU)
    for resource_type in ("Observation", "DiagnosticReport", "ServiceRequest", "Specimen"):
        for resource in resources(bundle, resource_type):
            assert fhir_validator.validate(resource) == [], resource_type
