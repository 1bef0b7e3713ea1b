"""encode_bundle: every corpus record, whole or minimised, becomes a valid FHIR R4
transaction Bundle holding nothing the record does not; the same input gives the same
Bundle; and reading the Bundle back keeps who the patient is and what was measured.

Golden files show what a receiver gets for a few samples. Regenerate them after a
deliberate change with ``SWITCHBOARD_UPDATE_GOLDEN=1 .venv/bin/python -m pytest
tests/engine/fhir/test_bundle.py`` and review the diff."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given
from hypothesis import strategies as st

from engine.fhir import codes, encode_bundle, read_fhir, to_canonical
from engine.fhir.bundle import CARRIED_FIELDS
from engine.fhir.read import RESOURCE_MODELS
from engine.fhir.times import fhir_date, fhir_datetime
from engine.model.canonical import canonical_paths
from engine.model.canonical_path import EVERY, format_canonical_path
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import SAMPLE_NAMES, body, clinic_north, convert, sample
from tests.golden import matches_golden
from tests.samples import CORPUS, CORPUS_FILES, corpus_ids

GOLDEN = Path(__file__).parent / "golden"
RECORDS = [convert(path) for path in CORPUS_FILES]
DATA_ABSENT = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                              "valueCode": "unknown"}]}


def valid(bundle):
    """The Bundle as FHIR R4 sees it; pydantic raises if it is not valid."""
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction"
    return bundle


def resources(bundle, resource_type=None):
    return [entry["resource"] for entry in bundle.get("entry", ())
            if resource_type in (None, entry["resource"]["resourceType"])]


def strings(value):
    """Every string in a JSON value, keys excepted."""
    if isinstance(value, dict):
        return {s for item in value.values() for s in strings(item)}
    if isinstance(value, list):
        return {s for item in value for s in strings(item)}
    return {value} if isinstance(value, str) else set()


# FHIR's vocabulary: words a Bundle may hold whatever the record says (a prior
# location is "completed"; a required status the record lacks is "unknown").
OWN_WORDS = {"transaction", "order", "completed", "mobile", "Practitioner", "Location",
             "allergy",  # AllergyIntolerance.type, and inside its code systems' URIs
             *RESOURCE_MODELS,  # resource type names: a body site may be "Observation"
             *(word for allowed, _ in codes.STATUSES.values() for word in allowed),
             *codes.TELECOM_SYSTEMS.values(), *codes.ORDER_PRIORITIES.values(),
             *codes.DOCUMENT_AVAILABILITY.values(), *codes.DOCUMENT_COMPLETION.values()}


def leaks(record, projected, bundle):
    """Values the scope left out of the record that the Bundle holds anyway, whole or
    inside a longer text (a display joins names). Inside a longer text only counts when
    no value in the scope holds it too: an out-of-scope id "123456" is part of an
    in-scope "123456789". Short values are not checked: "M" or "1" are everywhere."""
    inside = strings(projected)
    inside |= {form for value in inside for form in (fhir_date(value), fhir_datetime(value))
               if form}  # a time in scope is sent in its FHIR form
    sent = {text for text in strings(bundle) if not text.startswith("urn:uuid:")}
    outside = strings(record) - inside - OWN_WORDS
    return sorted(
        value for value in outside if len(value) >= 5 and (value in sent or (
            any(value in text for text in sent) and not any(value in text for text in inside))))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_every_corpus_record_encodes_to_a_valid_bundle(path):
    record = convert(path)
    bundle = valid(encode_bundle(record, "some-id"))
    assert bundle == encode_bundle(copy.deepcopy(record), "some-id")
    references_resolve(bundle)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_a_record_minimised_for_clinic_north_sends_only_its_scope(path):
    record = convert(path)
    projected = clinic_north().project(record)
    bundle = valid(encode_bundle(projected, "some-id"))
    assert leaks(record, projected, bundle) == []
    # clinic-north takes the envelope (message): its header, provenance, applications
    # and facilities; and orders and results, with the people and specimens they name.
    assert {r["resourceType"] for r in resources(bundle)} <= {
        "Patient", "ServiceRequest", "Observation", "DiagnosticReport", "Specimen",
        "MessageHeader", "Provenance", "Device", "Organization", "Practitioner",
        "PractitionerRole", "Location"}
    for patient in resources(bundle, "Patient"):
        assert set(patient) <= {"resourceType", "id", "identifier", "name", "birthDate",
                                "gender"}
    references_resolve(bundle)


def references_resolve(bundle):
    """Every reference in the Bundle points at one of its entries."""
    urls = {entry["fullUrl"] for entry in bundle.get("entry", ())}
    assert len(urls) == len(bundle.get("entry", ()))

    def visit(value):
        if isinstance(value, dict):
            if "reference" in value:
                assert value["reference"] in urls
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)
    visit(resources(bundle))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_reading_the_bundle_back_keeps_the_patient_and_the_results(path):
    record = convert(path)
    bundle = encode_bundle(record, "some-id")
    back = to_canonical(read_fhir(json.dumps(bundle).encode()),
                        received_at=datetime(2024, 5, 2, tzinfo=UTC))
    patient, returned = record["patient"], back["patient"]
    # A DB1 identifier of the patient's is one of the Patient's identifiers in FHIR.
    assert returned.get("identifiers", []) == patient.get("identifiers", []) + [
        {key: value for key, value in found.items() if key != "person"}
        for found in patient.get("disability_identifiers", [])
        if found.get("person") in (None, "PT")]
    for kept in ("ssn", "drivers_license"):
        assert returned.get(kept) == patient.get(kept)
    assert [name_parts(n) for n in returned.get("names", [])] == [
        name_parts(n) for n in patient.get("names", [])]
    # FHIR's birthDate is a date: a birth time sent in PID-7 comes back as its date
    assert returned.get("birth_date") == (patient.get("birth_date", "")[:10] or None)
    assert returned.get("gender") == patient.get("gender")
    assert [result_parts(r) for r in back["results"]] == [
        result_parts(r) for r in record["results"]]
    assert [(o.get("placer_id"), o.get("filler_id")) for o in back["orders"]] == [
        (o.get("placer_id"), o.get("filler_id")) for o in record["orders"]]


def name_parts(name):
    # FHIR lists the given names; HL7 splits the first from the rest.
    given = [name[part] for part in ("given", "middle") if name.get(part)]
    return (name.get("family"), given, name.get("prefix"), name.get("suffix"), name.get("use"))


def result_parts(result):
    value = value_parts(result.get("value"))
    numeric = value is not None and ("number" in value or "low" in value)
    return (result.get("code"), value,
            # Quantity.unit is the units' text (OBX-6.2), else their code (CWE[Quantity])
            (result.get("units_display") or result.get("units")) if numeric else None,
            result.get("abnormal_flags", []),
            # FHIR requires a status: a result without one comes back "unknown"
            result.get("status", "unknown"))


def value_parts(value):
    """What Observation.value[x] carries of a canonical value: not its HL7 v2 type, its
    coding system as a URI (a local one is not sent), and nothing of an attachment."""
    if not value or "attachment" in value or "repetitions" in value:
        # A repeating value travels as Observation.component, which FHIR in does not
        # read back yet.
        return None
    found = {key: part for key, part in value.items() if key != "type"}
    if "code" in found:
        system = found["code"].get("system")
        found["code"] = {key: part for key, part in {
            **found["code"], "system": codes.system_uri(system) if system else None}.items()
            if part}
    return found


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_fhir_documents_normalised_and_encoded_again_keep_what_they_said(name):
    received_at = datetime(2024, 5, 2, tzinfo=UTC)
    record = to_canonical(read_fhir(body(sample(name))), received_at=received_at)
    bundle = valid(encode_bundle(record, "some-id"))
    again = to_canonical(read_fhir(json.dumps(bundle).encode()), received_at=received_at)
    for section in ("patient", "orders", "appointments", "documents"):
        assert again[section] == record[section]
    assert [result_parts(r) for r in again["results"]] == [
        result_parts(r) for r in record["results"]]


def test_results_are_grouped_into_a_report_per_order():
    bundle = encode_bundle(convert(CORPUS / "fhir-converter/LAB-ORU-1.hl7"), "some-id")
    orders = {entry["fullUrl"]: entry["resource"] for entry in bundle["entry"]
              if entry["resource"]["resourceType"] == "ServiceRequest"}
    reports = resources(bundle, "DiagnosticReport")
    assert [len(report["result"]) for report in reports] == [5, 5]
    assert [report["basedOn"][0]["reference"] for report in reports] == list(orders)
    # OBR-25: F in the first; the second sends none, so the value set's "unknown"
    assert [report["status"] for report in reports] == ["final", "unknown"]
    for report in reports:
        assert report["code"] == orders[report["basedOn"][0]["reference"]]["code"]


def test_the_same_message_gives_the_same_ids_and_another_message_others():
    record = convert(CORPUS / "fhir-converter/LAB-ORU-1.hl7")
    first, again = encode_bundle(record, "msg-1"), encode_bundle(record, "msg-1")
    other = encode_bundle(record, "msg-2")
    assert first == again
    urls = [entry["fullUrl"] for entry in first["entry"]]
    assert all(url.startswith("urn:uuid:") for url in urls)
    # A party the message names (a practitioner...) keeps its id across messages.
    shared = {"Practitioner", "Organization", "Location", "Device"}
    assert not {entry["fullUrl"] for entry in first["entry"]
                if entry["resource"]["resourceType"] not in shared} & {
        entry["fullUrl"] for entry in other["entry"]}
    assert first["identifier"]["value"] != other["identifier"]["value"]


# --- requests -----------------------------------------------------------------------


def patient_entry(identifiers):
    bundle = valid(encode_bundle({"patient": {"identifiers": identifiers}}, "m"))
    return bundle["entry"][0]


def test_a_patient_with_a_uri_system_is_created_only_if_the_server_has_none():
    entry = patient_entry([{"value": "MRN|204,417", "assigning_authority": "urn:oid:1.2.3",
                            "type": "MR"}])
    assert entry["request"] == {"method": "POST", "url": "Patient",
                                "ifNoneExist": "identifier=urn:oid:1.2.3|MRN%5C%7C204%5C%2C417"}
    assert entry["resource"]["identifier"] == [{
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                             "code": "MR"}]},
        "system": "urn:oid:1.2.3", "value": "MRN|204,417"}]


def test_a_patient_without_a_uri_system_is_put_with_its_authority_as_assigner():
    entry = patient_entry([{"value": "PATID1234", "assigning_authority": "GOOD HEALTH HOSPITAL",
                            "type": "GOOD HEALTH HOSPITAL"}])
    # Put at an id made from the identifier and its assigner: the same patient in
    # another message, or this message delivered again, creates no second Patient.
    assert entry["request"] == {"method": "PUT", "url": f"Patient/{entry['resource']['id']}"}
    another = encode_bundle({"patient": {"identifiers": [
        {"value": "PATID1234", "assigning_authority": "GOOD HEALTH HOSPITAL"}]}}, "another")
    assert another["entry"][0]["fullUrl"] == entry["fullUrl"]
    assert entry["resource"]["identifier"] == [{
        "type": {"text": "GOOD HEALTH HOSPITAL"}, "value": "PATID1234",
        "assigner": {"display": "GOOD HEALTH HOSPITAL"}}]


def test_the_patient_is_searched_for_by_its_first_identifier_with_a_uri_system():
    entry = patient_entry([{"value": "PATID1234", "assigning_authority": "test1"},
                           {"value": "MRN-204417", "assigning_authority": "urn:oid:1.2.3"}])
    assert entry["request"]["ifNoneExist"] == "identifier=urn:oid:1.2.3|MRN-204417"


@pytest.mark.parametrize("record", [{}, {"patient": {}, "results": [], "orders": [{}]},
                                    {"message": {"type": "ORU", "event": "R01"}}])
def test_a_record_with_nothing_to_send_gives_an_empty_transaction(record):
    bundle = valid(encode_bundle(record, "m"))
    assert "entry" not in bundle


# --- what FHIR requires and the record lacks ----------------------------------------


def test_required_elements_the_record_lacks_are_marked_absent():
    record = {"results": [{"value": 7.2}], "orders": [{"placer_id": "P1"}],
              "appointments": [{"placer_id": "A1"}], "documents": [{"id": "D1"}],
              "encounter": {"visit_number": "V1"}}
    bundle = valid(encode_bundle(record, "m"))
    (observation,) = resources(bundle, "Observation")
    assert observation["status"] == "unknown" and observation["code"] == DATA_ABSENT
    assert "subject" not in observation
    (order,) = resources(bundle, "ServiceRequest")
    assert order["subject"] == DATA_ABSENT and order["intent"] == "order"
    (appointment,) = resources(bundle, "Appointment")
    assert appointment["_status"] == DATA_ABSENT
    assert appointment["participant"] == [{"actor": DATA_ABSENT, "_status": DATA_ABSENT}]
    (document,) = resources(bundle, "DocumentReference")
    assert document["_status"] == DATA_ABSENT
    assert document["content"] == [{"attachment": DATA_ABSENT}]
    (encounter,) = resources(bundle, "Encounter")
    assert encounter["status"] == "unknown" and encounter["class"] == DATA_ABSENT


@pytest.mark.parametrize("canonical, fhir", [
    ("2024-05-02T07:45+02:00", "2024-05-02T07:45:00+02:00"),
    ("2024-05-02T07+02:00", "2024-05-02T07:00:00+02:00"),
    ("2024-05-02T07:45:10.25-05:00", "2024-05-02T07:45:10.25-05:00"),
    # FHIR requires an offset with a time; none is made up: the date is sent
    ("2024-05-02T07:45:10", "2024-05-02"),
    ("2024-05", "2024-05"),
])
def test_times_keep_their_offset_or_fall_back_to_their_date(canonical, fhir):
    bundle = valid(encode_bundle({"results": [{"code": "8867-4", "observed_at": canonical}]},
                                 "m"))
    assert resources(bundle, "Observation")[0]["effectiveDateTime"] == fhir


SNOMED = "http://snomed.info/sct"


@pytest.mark.parametrize("value, units, fhir", [
    ({"type": "NM", "number": 4.41}, "10*6/uL",
     {"valueQuantity": {"value": 4.41, "unit": "10*6/uL"}}),
    ({"type": "SN", "number": 182}, "mg/dl", {"valueQuantity": {"value": 182, "unit": "mg/dl"}}),
    ({"type": "SN", "comparator": ">", "number": 100}, "mg/dl",
     {"valueQuantity": {"value": 100, "comparator": ">", "unit": "mg/dl"}}),
    ({"type": "SN", "comparator": "=", "number": 5}, None, {"valueQuantity": {"value": 5}}),
    ({"type": "SN", "comparator": "<>", "number": 5}, None, {"valueString": "<>5"}),
    ({"type": "SN", "low": 10, "high": 20}, "mg/dl",
     {"valueRange": {"low": {"value": 10, "unit": "mg/dl"},
                     "high": {"value": 20, "unit": "mg/dl"}}}),
    ({"type": "SN", "numerator": 1, "denominator": 128}, None,
     {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}}),
    ({"type": "SN", "text": "2+"}, None, {"valueString": "2+"}),
    ({"type": "ST", "text": "Positive"}, None, {"valueString": "Positive"}),
    ({"type": "FT", "text": "one\ntwo"}, None, {"valueString": "one\ntwo"}),
    ({"type": "HD", "text": "1.2.840.317.5947431.51"}, None,
     {"valueString": "1.2.840.317.5947431.51"}),
    ({"type": "CWE", "code": {"code": "27268008", "display": "Salmonella", "system": "SCT"},
      "text": "Salmonella species"}, "beats/min",
     {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "27268008",
                                           "display": "Salmonella"}],
                               "text": "Salmonella species"}}),
    ({"type": "CE", "code": {"code": "V01", "display": "Not VFC Eligible",
                             "system": "HL70064"}}, None,
     {"valueCodeableConcept": {"coding": [{
         "system": "http://terminology.hl7.org/CodeSystem/v2-0064", "code": "V01",
         "display": "Not VFC Eligible"}]}}),
    ({"type": "DT", "datetime": "2021-08-18"}, None, {"valueDateTime": "2021-08-18"}),
    ({"type": "TS", "datetime": "2015-08-18T06:06:05-05:00"}, None,
     {"valueDateTime": "2015-08-18T06:06:05-05:00"}),
    # R4's Observation.value[x] has no Attachment: RP and ED give no value element
    ({"type": "RP", "attachment": {"pointer": "https://testurl.com", "data_type": "image"}},
     None, {}),
])
def test_an_observation_value_from_each_canonical_value(value, units, fhir):
    result = {"code": "8867-4", "value": value, **({"units": units} if units else {})}
    (observation,) = resources(valid(encode_bundle({"results": [result]}, "m")), "Observation")
    assert {key: item for key, item in observation.items() if key.startswith("value")} == fhir


def test_an_appointment_and_a_document():
    record = convert(CORPUS / "fhir-converter/MDM-T02-01.hl7")
    record["appointments"] = [{
        "placer_id": "12345", "status": "booked", "start": "2020-10-01T11:26+02:15",
        "end": "2020-10-01T12:26:00", "duration_minutes": 60, "location": "055",
        "provider": {"id": "1210", "family": "GE", "given": "Robert"}}]
    bundle = valid(encode_bundle(record, "m"))
    (patient,) = [entry["fullUrl"] for entry in bundle["entry"]
                  if entry["resource"]["resourceType"] == "Patient"]
    (appointment,) = resources(bundle, "Appointment")
    assert appointment["start"] == "2020-10-01T11:26:00+02:15"
    assert "end" not in appointment  # an instant needs an offset the record lacks
    assert appointment["minutesDuration"] == 60
    assert [p["actor"] for p in appointment["participant"]] == [
        {"reference": patient},
        {"type": "Practitioner", "identifier": {"value": "1210"}, "display": "Robert GE"},
        {"type": "Location", "display": "055"}]
    (document,) = resources(bundle, "DocumentReference")
    assert document["docStatus"] == "final"  # TXA-17 AU
    assert document["_status"] == DATA_ABSENT  # TXA-19 was not sent
    attachment = document["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]).decode() == record["documents"][0]["text"]
    (encounter,) = [entry["fullUrl"] for entry in bundle["entry"]
                    if entry["resource"]["resourceType"] == "Encounter"]
    assert document["context"]["encounter"] == [{"reference": encounter}]


RESOURCE_OF_SECTION = {"encounter": "Encounter", "orders": "ServiceRequest",
                       "results": "Observation", "appointments": "Appointment",
                       "documents": "DocumentReference"}


def section_fields():
    """(section, field) for every field directly in a section with its own resource."""
    for steps in sorted(canonical_paths()):
        if steps[0] == "encounter" and len(steps) == 2:
            yield "encounter", steps[1]
        elif steps[0] in RESOURCE_OF_SECTION and len(steps) == 3 and steps[1] == EVERY:
            yield steps[0], steps[2]


@pytest.mark.parametrize("section, field", list(section_fields()),
                         ids=[f"{s}.{f}" for s, f in section_fields()])
def test_a_resource_is_sent_for_the_fields_it_carries_and_only_for_them(section, field):
    path = f"{section}.{field}" if section == "encounter" else f"{section}[*].{field}"
    scope = compile_scope([path])
    projected = [scope.project(r) for r in RECORDS]
    projected = [p for p in projected if p]
    assert projected, f"no corpus record has {path}: add a sample that does"
    carried = field in CARRIED_FIELDS[section]
    for record in projected:
        bundle = valid(encode_bundle(record, "m"))
        assert bool(resources(bundle, RESOURCE_OF_SECTION[section])) == carried
        if not carried:
            assert "entry" not in bundle


# --- golden files -------------------------------------------------------------------

GOLDEN_CASES = [
    # (sample, minimised to the clinic-north scope?)
    ("fhir-converter/LAB-ORU-1.hl7", True),
    ("fhir-converter/ADT-A01-01.hl7", False),
    ("fhir-converter/SIU-S12-01.hl7", False),
    ("fhir-converter/MDM-T02-01.hl7", False),
]


@pytest.mark.parametrize("sample, minimised", GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES])
def test_encoded_sample_matches_its_golden_file(sample, minimised):
    record = convert(CORPUS / sample)
    if minimised:
        record = clinic_north().project(record)
    text = json.dumps(encode_bundle(record, "golden"), indent=1, ensure_ascii=False) + "\n"
    golden = GOLDEN / (Path(sample).stem + (".clinic-north" if minimised else "") + ".json")
    assert matches_golden(text.encode("utf-8"), golden)


# --- properties ---------------------------------------------------------------------

PATHS = sorted(format_canonical_path(steps) for steps in canonical_paths())


@given(st.sampled_from(RECORDS), st.lists(st.sampled_from(PATHS), max_size=8))
def test_any_scope_gives_a_valid_bundle_that_holds_nothing_outside_it(record, scope):
    projected = compile_scope(scope).project(record)
    bundle = valid(encode_bundle(projected, "some-id"))
    assert leaks(record, projected, bundle) == []
