"""VXU to FHIR Immunization (the IG's RXA, RXR and ORC[Immunization] maps): what a
receiver gets from the corpus messages and small hand-written ones, whole, minimised
and twice."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle

from engine.fhir import encode_bundle
from engine.hl7v2 import parse
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import mapper, resources
from tests.samples import CORPUS

VXU = CORPUS / "fhir-converter" / "VXU-V04-01.hl7"
NIST = CORPUS / "fhir-converter" / "IZ_1_1.1_Admin_Child_Max_Message.hl7"
AP, OP = "AP", "OP"


def record_of(text: bytes) -> dict:
    return mapper().convert(parse(text)).record


def bundle_of(record: dict, message_id: str = "vxu-1") -> dict:
    bundle = encode_bundle(record, message_id)
    Bundle.model_validate(bundle)
    return bundle



def by_url(bundle: dict, reference: dict) -> dict:
    found = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"]]
    assert len(found) == 1, reference
    return found[0]


def rxa(**fields: str) -> str:
    """An RXA with its fields by number (``f20="CP"``), vaccine and time set."""
    values = {3: "20120814", 5: "140^Flu^CVX"} | {int(k[1:]): v for k, v in fields.items()}
    return "|".join(["RXA"] + [values.get(n, "") for n in range(1, max(values) + 1)])


def small(rxa: str, rxr: str = "RXR|C28161^Intramuscular^NCIT|LD^Left Arm^HL70163") -> bytes:
    return "\r".join([
        "MSH|^~\\&|EHR|X68||IIS|20120701082200+0700||VXU^V04^VXU_V04|M1|P|2.5.1",
        "PID|1||D26376273^^^NIST MPI^MR||Snow^Madelynn",
        "ORC|RE||IZ-783274^NDA|||||||||57422^RADON^NICHOLAS",
        rxa, rxr]).encode()


def test_the_nist_vxu_gives_an_immunization_with_the_igs_elements() -> None:
    bundle = bundle_of(record_of(NIST.read_bytes()))
    [immunization] = resources(bundle, "Immunization")
    assert immunization["status"] == "completed"
    assert immunization["vaccineCode"] == {"coding": [{
        "system": "http://hl7.org/fhir/sid/cvx", "code": "140",
        "display": "Influenza, seasonal, injectable, preservative free"}]}
    assert immunization["occurrenceDateTime"] == "2012-08-14"
    assert immunization["doseQuantity"] == {"value": 0.5, "unit": "MilliLiter [SI Volume Units]",
                                            "system": "http://unitsofmeasure.org", "code": "mL"}
    assert immunization["lotNumber"] == "Z0860BB"
    assert immunization["expirationDate"] == "2012-11-04"
    assert immunization["primarySource"] is True and "reportOrigin" not in immunization
    assert immunization["identifier"] == [{"type": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "FILL"}]},
        "value": "IZ-783274"}]
    assert immunization["route"]["coding"][0]["code"] == "C28161"
    assert immunization["site"]["coding"] == [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0163", "code": "LD",
        "display": "Left Arm"}]
    patient = by_url(bundle, immunization["patient"])
    assert patient["resourceType"] == "Patient"
    maker = by_url(bundle, immunization["manufacturer"])
    assert maker == {"resourceType": "Organization", "name": "CSL Behring", "identifier": [
        {"system": "http://hl7.org/fhir/sid/mvx", "value": "CSL"}]}
    performers = {p["function"]["coding"][0]["code"]: by_url(bundle, p["actor"])
                  for p in immunization["performer"]}
    assert performers[AP]["name"] == [{"family": "Lemon", "given": ["Mike"]}]
    assert performers[OP]["name"] == [{"family": "RADON", "given": ["NICHOLAS"]}]
    assert {p["function"]["coding"][0]["system"] for p in immunization["performer"]} == {
        "http://terminology.hl7.org/CodeSystem/v2-0443"}


def test_the_fhir_converter_vxu_keeps_order_numbers_location_and_the_encounter() -> None:
    bundle = bundle_of(record_of(VXU.read_bytes()))
    [immunization] = resources(bundle, "Immunization")
    assert [i["value"] for i in immunization["identifier"]] == ["4422", "13696"]
    assert immunization["vaccineCode"]["coding"][0]["code"] == "49281021588"
    assert by_url(bundle, immunization["encounter"])["resourceType"] == "Encounter"
    assert by_url(bundle, immunization["location"])["resourceType"] == "Location"
    assert by_url(bundle, immunization["manufacturer"])["name"] == "Sanofi Pasteur"


@pytest.mark.parametrize(("completion", "action", "status"), [
    ("CP", "A", "completed"),
    ("RE", "A", "not-done"),
    ("NA", "", "not-done"),
    ("PA", "U", "completed"),
    ("", "A", "completed"),  # RXA-20 not sent: the IG says completed
    ("CP", "D", "entered-in-error"),  # RXA-21 D wins over RXA-20
])
def test_status_follows_the_completion_status_map_and_the_action_code(
        completion: str, action: str, status: str) -> None:
    message = small(rxa(f20=completion, f21=action, f22="20120815"))
    [immunization] = resources(bundle_of(record_of(message)), "Immunization")
    assert immunization["status"] == status


def test_refusal_reason_and_a_historical_record() -> None:
    message = small(rxa(f6="999", f9="01^Historical, source unspecified^NIP001",
                        f18="00^Parental decision^NIP002", f20="RE"))
    [immunization] = resources(bundle_of(record_of(message)), "Immunization")
    assert immunization["status"] == "not-done"
    assert immunization["statusReason"] == {"coding": [{"code": "00",
                                                        "display": "Parental decision"}]}
    assert immunization["primarySource"] is False
    assert immunization["reportOrigin"] == {"coding": [{
        "code": "01", "display": "Historical, source unspecified"}]}


def test_an_unknown_completion_status_is_absent_not_made_up() -> None:
    [immunization] = resources(bundle_of(record_of(small(rxa(f20="XX", f21="A")))),
                               "Immunization")
    assert "status" not in immunization
    assert immunization["_status"]["extension"][0]["valueCode"] == "unknown"


def test_immunizations_come_only_from_vxu() -> None:
    ras = small(rxa()).replace(b"VXU^V04^VXU_V04", b"RAS^O17^RAS_O17")
    assert "immunizations" not in record_of(ras)


def test_a_scope_without_immunizations_gives_none() -> None:
    record = record_of(NIST.read_bytes())
    scoped = compile_scope(["patient.names", "encounter"]).project(record)
    assert resources(bundle_of(scoped), "Immunization") == []


def test_a_scope_with_some_fields_gives_only_those() -> None:
    record = record_of(NIST.read_bytes())
    scoped = compile_scope(["patient.identifiers", "immunizations[*].vaccine",
                            "immunizations[*].administered_at"]).project(record)
    bundle = bundle_of(scoped)
    [immunization] = resources(bundle, "Immunization")
    assert set(immunization) == {"resourceType", "id", "_status", "vaccineCode", "patient",
                                 "occurrenceDateTime"}
    assert resources(bundle, "Organization") == resources(bundle, "Practitioner") == []


def test_an_immunization_minimised_to_nothing_it_carries_gives_no_resource() -> None:
    record = record_of(NIST.read_bytes())
    scoped = compile_scope(["patient", "immunizations[*].completion_status"]).project(record)
    assert resources(bundle_of(scoped), "Immunization") == []


def test_without_a_vaccine_code_or_time_the_required_elements_say_unknown() -> None:
    record = record_of(NIST.read_bytes())
    scoped = compile_scope(["immunizations[*].lot_number"]).project(record)
    [immunization] = resources(bundle_of(scoped), "Immunization")
    for element in ("vaccineCode", "patient", "_occurrenceString"):
        assert immunization[element]["extension"][0]["valueCode"] == "unknown"
    assert immunization["occurrenceString"] == "unknown"


def test_the_same_message_gives_the_same_ids() -> None:
    record = record_of(VXU.read_bytes())
    first, second = encode_bundle(record, "vxu-1"), encode_bundle(record, "vxu-1")
    assert first == second
    other = encode_bundle(record, "vxu-2")
    urls = {e["fullUrl"] for e in first["entry"] if e["resource"]["resourceType"] == "Immunization"}
    assert urls.isdisjoint(
        e["fullUrl"] for e in other["entry"] if e["resource"]["resourceType"] == "Immunization")


def test_medplum_accepts_the_immunization_bundles(fhir_validator) -> None:
    for path in (VXU, NIST):
        bundle = bundle_of(record_of(path.read_bytes()), path.stem)
        immunization = resources(bundle, "Immunization")[0]
        assert fhir_validator.validate(immunization) == []
