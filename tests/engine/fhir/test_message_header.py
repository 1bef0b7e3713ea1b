"""The envelope and the people and places a message names, as FHIR: MessageHeader,
Provenance, Device and Organization from MSH, SFT and EVN; the Patient's identifiers
from PID-2, PID-3, PID-4, PID-19, PID-20 and DB1; Practitioners and Locations from PV1;
PractitionerRoles from ROL; Patient.link from MRG. Each bundle is valid R4 (R4B
models), and a party named in two messages has the same id in both."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from engine.fhir import encode_bundle
from engine.hl7v2 import parse
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import mapper
from tests.samples import CORPUS

A01 = CORPUS / "fhir-converter" / "ADT-A01-01.hl7"


def bundle_of(message: bytes, message_id: str = "m1") -> dict:
    bundle = encode_bundle(mapper().convert(parse(message)).record, message_id)
    Bundle.model_validate(bundle)
    return bundle


def of_type(bundle: dict, resource_type: str) -> list[dict]:
    return [entry["resource"] for entry in bundle.get("entry", [])
            if entry["resource"]["resourceType"] == resource_type]


def resolve(bundle: dict, reference: dict) -> dict:
    [found] = [entry["resource"] for entry in bundle["entry"]
               if entry["fullUrl"] == reference["reference"]]
    return found


def test_msh_gives_a_message_header_with_its_applications_and_facilities():
    bundle = bundle_of(A01.read_bytes())
    [header] = of_type(bundle, "MessageHeader")
    assert header["eventCoding"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0003", "code": "A01"}
    assert header["source"]["name"] == "ADTApp"
    assert header["source"]["software"] == "Rhapsody"  # SFT-3
    assert header["source"]["version"] == "2.4.3.52854"  # SFT-2
    sender = resolve(bundle, header["sender"])
    assert sender["name"] == "GHHSFacility"
    assert sender["identifier"] == [{"system": "urn:ietf:rfc:3986",
                                     "value": "urn:oid:2.16.840.1.122848.1.30"}]
    [destination] = header["destination"]
    assert destination["name"] == "EHRApp"
    assert resolve(bundle, destination["receiver"])["name"] == "GHHRFacility"
    assert resolve(bundle, destination["target"])["deviceName"][0]["name"] == "EHRApp"
    assert header["meta"]["tag"] == [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0103", "code": "P"}]


def test_evn_gives_a_provenance_of_what_the_message_made():
    bundle = bundle_of(A01.read_bytes())
    [provenance] = of_type(bundle, "Provenance")
    assert provenance["recorded"] == "2029-08-01T07:06:24+01:15"  # EVN-2, offset kept
    assert provenance["occurredDateTime"] == "2021-08-17T15:19:43.4+02:00"  # EVN-6
    operator = resolve(bundle, provenance["agent"][0]["who"])
    assert operator["resourceType"] == "Practitioner"
    assert operator["name"][0]["family"] == "Woolfson"
    targets = {resolve(bundle, t)["resourceType"] for t in provenance["target"]}
    assert {"Patient", "Encounter"} <= targets
    assert not targets & {"MessageHeader", "Provenance", "Practitioner", "Organization"}


def test_every_patient_identifier_pid_sends_is_kept_pid_3_first():
    [patient] = of_type(bundle_of(A01.read_bytes()), "Patient")
    values = [identifier["value"] for identifier in patient["identifier"]]
    assert values[:2] == ["PATID1234", "123456789"]  # PID-3, both repetitions
    assert values[2:] == ["1234567", "PATID567", "PSSN123121234", "DLN-123", "DB123"]
    by_value = {identifier["value"]: identifier for identifier in patient["identifier"]}
    assert by_value["PSSN123121234"]["system"] == "http://hl7.org/fhir/sid/us-ssn"
    assert by_value["PSSN123121234"]["type"]["coding"][0]["code"] == "SS"
    assert by_value["DLN-123"]["type"]["coding"][0]["code"] == "DL"
    assert by_value["DLN-123"]["period"] == {"end": "2001-01-23"}


def test_the_visit_names_its_doctors_and_place_as_resources():
    bundle = bundle_of(A01.read_bytes())
    [encounter] = of_type(bundle, "Encounter")
    roles = {participant["type"][0]["coding"][0]["code"]:
             resolve(bundle, participant["individual"])
             for participant in encounter["participant"]}
    assert set(roles) == {"ATND", "REF", "CON", "ADM"}
    assert roles["ATND"]["identifier"][0]["value"] == "1122334"
    assert roles["ATND"]["name"][0]["family"] == "Alaz"
    place = resolve(bundle, encounter["location"][0]["location"])
    assert place["resourceType"] == "Location"
    assert place["physicalType"]["coding"][0]["code"] == "bd"


def test_a_practitioner_has_the_same_id_in_every_message_that_names_them():
    first, second = bundle_of(A01.read_bytes(), "m1"), bundle_of(A01.read_bytes(), "m2")

    def attending(bundle: dict) -> str:
        [encounter] = of_type(bundle, "Encounter")
        return next(p["individual"]["reference"] for p in encounter["participant"]
                    if p["type"][0]["coding"][0]["code"] == "ATND")

    assert attending(first) == attending(second)
    # while the message's own resources are the message's
    assert of_type(first, "Encounter") and first["entry"] != second["entry"]


def test_a_practitioner_named_twice_is_one_resource():
    message = (b"MSH|^~\\&|A|F|B|G|20240101||ADT^A01|1|P|2.5\r"
               b"PID|1||42^^^H^MR||Doe^Jane\r"
               b"PV1|1|I|||||77^House^Greg|77^House^Greg\r")
    bundle = bundle_of(message)
    assert len(of_type(bundle, "Practitioner")) == 1


def test_rol_gives_practitioner_roles():
    bundle = bundle_of(A01.read_bytes())
    [role] = [role for role in of_type(bundle, "PractitionerRole")
              if role["code"][0]["coding"][0]["code"] == "PP"][:1]
    assert role["code"][0]["coding"][0]["code"] == "PP"
    assert resolve(bundle, role["practitioner"])["name"][0]["family"] == "Smith"
    # ROL-5/6 have no offset, and a FHIR dateTime with a time must have one: the date
    assert role["period"] == {"start": "2022-01-01", "end": "2022-02-02"}


def test_mrg_links_the_patient_to_the_one_it_replaces():
    message = (b"MSH|^~\\&|A|F|B|G|20240101||ADT^A40|1|P|2.5\r"
               b"PID|1||42^^^H^MR||Doe^Jane\rMRG|17^^^H^MR\r")
    [patient] = of_type(bundle_of(message), "Patient")
    assert patient["link"] == [{"other": {"type": "Patient", "identifier": {
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                             "code": "MR"}]},
        "value": "17", "assigner": {"display": "H"}}}, "type": "replaces"}]


def test_a_record_minimised_to_the_patient_sends_no_envelope_or_parties():
    record = mapper().convert(parse(A01.read_bytes())).record
    bundle = encode_bundle(compile_scope(["patient.names", "patient.gender"]).project(record),
                           "m1")
    Bundle.model_validate(bundle)
    assert {entry["resource"]["resourceType"] for entry in bundle["entry"]} == {"Patient"}
    [patient] = of_type(bundle, "Patient")
    assert "identifier" not in patient


def test_the_same_message_gives_the_same_bundle():
    assert bundle_of(A01.read_bytes()) == bundle_of(A01.read_bytes())
