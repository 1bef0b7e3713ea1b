"""Appointments after the v2-to-FHIR IG's SCH, AIS, AIG, AIL and AIP [Appointment]
maps: every clinician and place booked is a participant with a resource of its own."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from engine.fhir import encode_bundle
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import convert
from tests.engine.fhir.test_observations import resources, url_of
from tests.samples import CORPUS

SIU = CORPUS / "fhir-converter/SIU-S12-01.hl7"


def bundle_of(scope: list[str] | None = None, message_id: str = "m") -> dict:
    record = convert(SIU)
    if scope is not None:
        record = compile_scope(scope).project(record)
    bundle = encode_bundle(record, message_id)
    Bundle.model_validate(bundle)
    return bundle


def test_sch_and_ais_give_the_appointment():
    (appointment,) = resources(bundle_of(), "Appointment")
    assert appointment["status"] == "booked"
    assert appointment["serviceType"] == [{"coding": [{
        "system": "http://snomed.info/sct", "code": "76164006",
        "display": "Biopsy of colon (procedure)"}]}]  # AIS-3
    assert appointment["reasonCode"] == [{"coding": [{"code": "EMERGENCY"}]}]  # SCH-7
    assert appointment["appointmentType"] == {"coding": [{"code": "Normal"}]}  # SCH-8
    assert appointment["start"] == "2020-10-01T11:26:00+02:15"
    assert appointment["minutesDuration"] == 60


def test_every_resource_booked_is_a_participant():
    bundle = bundle_of()
    (appointment,) = resources(bundle, "Appointment")
    urls = {entry["fullUrl"]: entry["resource"] for entry in bundle["entry"]}
    actors = [p["actor"] for p in appointment["participant"]]
    kinds = [urls[a["reference"]]["resourceType"] if "reference" in a else a["type"]
             for a in actors]
    assert kinds == ["Patient", "Practitioner", "Location", "Location", "Practitioner",
                     "Practitioner"]
    clinician = urls[actors[1]["reference"]]  # AIP-3
    assert clinician["name"] == [{"family": "GE", "given": ["Robert"]}]
    assert appointment["participant"][1]["type"] == [{"coding": [{
        "code": "010", "display": "Gastroenterologist"}]}]  # AIP-4
    assert appointment["participant"][1]["period"] == {"start": "2021-09-24T09:30:00+02:15"}
    room = urls[actors[2]["reference"]]  # AIL-3
    assert room["name"] == "055, Room01, GH Clinic"
    assert actors[3] == {"type": "Location", "identifier": {"value": "5001"},
                         "display": "EVIS X12 Video Colonoscope"}  # AIG-3
    assert [p["type"] for p in appointment["participant"][4:]] == [
        [{"text": "placer contact"}], [{"text": "filler contact"}]]  # SCH-12, SCH-16


def test_a_schedule_without_an_order_number_makes_no_service_request():
    """SIU_S12: SCH[ServiceRequest] and AIS[ServiceRequest] only IF SCH-26 or SCH-27."""
    assert resources(bundle_of(), "ServiceRequest") == []


def test_a_scope_without_appointments_sends_none_and_one_with_status_only_that():
    assert resources(bundle_of(["patient"]), "Appointment") == []
    (appointment,) = resources(bundle_of(["appointments[*].status"]), "Appointment")
    assert appointment["status"] == "booked"
    assert "reference" not in str(appointment)  # no participant the scope left out
    assert resources(bundle_of(["appointments[*].status"]), "Practitioner") == []


def test_the_same_message_gives_the_same_appointment_id():
    assert url_of(bundle_of(), "Appointment") == url_of(bundle_of(), "Appointment")
    assert url_of(bundle_of(), "Appointment") != url_of(bundle_of(message_id="n"),
                                                        "Appointment")


def test_medplum_accepts_the_appointments(fhir_validator):
    for path in sorted((CORPUS / "fhir-converter").glob("SIU-*.hl7")):
        bundle = encode_bundle(convert(path), path.stem)
        for resource_type in ("Appointment", "Location", "Practitioner"):
            for resource in resources(bundle, resource_type):
                assert fhir_validator.validate(resource) == [], (path.name, resource_type)
