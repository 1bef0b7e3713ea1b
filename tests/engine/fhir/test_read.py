"""read_fhir: the supported resources and Bundles are read with their journal keys;
anything else raises FhirError, whose text says where and never quotes the input."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from fhir.resources.R4B.patient import Patient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.errors import SwitchboardError
from engine.fhir import FhirError, FhirInput, read_fhir
from engine.hl7v2 import parse
from engine.journal import patient_key as hl7_patient_key
from tests.engine.fhir.corpus import SAMPLE_NAMES, body, sample
from tests.json_positions import positions

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.4242.1"

# The least each supported resource needs to be valid FHIR R4.
MINIMAL = {
    "Patient": {"resourceType": "Patient"},
    "Encounter": {"resourceType": "Encounter", "status": "planned", "class": {"code": "AMB"}},
    "Observation": {"resourceType": "Observation", "status": "final", "code": {"text": "Pulse"}},
    "DiagnosticReport": {"resourceType": "DiagnosticReport", "status": "final",
                         "code": {"text": "CBC"}},
    "ServiceRequest": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                       "subject": {"display": "A patient"}},
    "Appointment": {"resourceType": "Appointment", "status": "booked",
                    "participant": [{"status": "accepted", "actor": {"display": "Room 3"}}]},
    "DocumentReference": {"resourceType": "DocumentReference", "status": "current",
                          "content": [{"attachment": {"title": "note.txt"}}]},
}


@pytest.mark.parametrize("name, resource_type, control_id", [
    ("patient.json", "Patient", "Patient/pat-204417"),
    ("observation.json", "Observation", "Observation/glu-88121"),
    ("lab-report-bundle.json", "Bundle", "urn:oid:2.16.840.1.113883.3.4242.9|LAB-2024-0007731"),
    ("appointment-bundle.json", "Bundle", None),
    ("document-bundle.json", "Bundle", None),
])
def test_sample_documents_are_read(name, resource_type, control_id):
    document = sample(name)
    fhir = read_fhir(body(document))
    assert isinstance(fhir, FhirInput)
    assert fhir.resource_type == resource_type
    assert fhir.document == document
    assert fhir.control_id == control_id
    assert len(fhir.content_hash) == 64
    int(fhir.content_hash, 16)


def test_every_sample_is_covered():
    assert SAMPLE_NAMES == ["appointment-bundle.json", "document-bundle.json",
                            "lab-report-bundle.json", "observation.json", "patient.json"]


@pytest.mark.parametrize("resource_type", sorted(MINIMAL))
def test_each_supported_resource_is_read_alone_and_in_a_bundle(resource_type):
    assert read_fhir(body(MINIMAL[resource_type])).resource_type == resource_type
    for bundle_type in ("collection", "transaction", "batch", "searchset"):
        bundle = {"resourceType": "Bundle", "type": bundle_type,
                  "entry": [{"resource": MINIMAL[resource_type]}]}
        assert read_fhir(body(bundle)).resource_type == "Bundle"


def test_a_utf8_body_with_a_byte_order_mark_is_read():
    raw = "\ufeff".encode() + body(sample("patient.json"))
    assert read_fhir(raw).control_id == "Patient/pat-204417"


# --- control id ---------------------------------------------------------------------


@pytest.mark.parametrize("document, control_id", [
    ({"resourceType": "Bundle", "type": "collection", "id": "b1",
      "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:6e1ba7b4"}},
     "urn:ietf:rfc:3986|urn:uuid:6e1ba7b4"),
    ({"resourceType": "Bundle", "type": "collection", "id": "b1",
      "identifier": {"value": "LAB-0007"}}, "LAB-0007"),
    ({"resourceType": "Bundle", "type": "collection", "id": "b1",
      "identifier": {"system": "urn:ietf:rfc:3986"}}, "Bundle/b1"),
    ({"resourceType": "Bundle", "type": "collection", "id": "b1"}, "Bundle/b1"),
    ({"resourceType": "Bundle", "type": "collection"}, None),
    ({"resourceType": "Patient", "id": "pat-1"}, "Patient/pat-1"),
    ({"resourceType": "Patient", "identifier": [{"system": MRN_SYSTEM, "value": "MRN-1"}]}, None),
    ({**MINIMAL["Observation"], "id": "obs-9"}, "Observation/obs-9"),
], ids=["bundle-identifier", "bundle-identifier-without-system", "bundle-identifier-no-value",
        "bundle-id", "bundle-neither", "resource-id", "resource-without-id", "observation-id"])
def test_control_id(document, control_id):
    assert read_fhir(body(document)).control_id == control_id


# --- content hash -------------------------------------------------------------------


def hash_of(document):
    return read_fhir(body(document)).content_hash


def test_the_content_hash_ignores_meta_last_updated_at_any_depth():
    bundle = sample("lab-report-bundle.json")
    first = hash_of(bundle)
    resent = copy.deepcopy(bundle)
    resent["meta"] = {"lastUpdated": "2024-06-01T00:00:00Z"}
    for entry in resent["entry"]:
        entry["resource"]["meta"] = {"lastUpdated": "2024-06-01T00:00:01.5+02:00"}
    assert hash_of(resent) == first


def test_the_content_hash_ignores_last_updated_beside_other_meta():
    patient = sample("patient.json")
    resent = copy.deepcopy(patient)
    resent["meta"]["lastUpdated"] = "2025-01-01T00:00:00Z"
    assert hash_of(resent) == hash_of(patient)
    del resent["meta"]["lastUpdated"]
    assert hash_of(resent) == hash_of(patient)


def test_the_content_hash_ignores_key_order():
    patient = sample("patient.json")
    reordered = dict(reversed(list(patient.items())))
    assert json.dumps(reordered) != json.dumps(patient)
    assert hash_of(reordered) == hash_of(patient)


@pytest.mark.parametrize("change", [
    lambda d: d.update(birthDate="1984-03-18"),
    lambda d: d["meta"].update(versionId="4"),  # only lastUpdated is ignored
    lambda d: d["name"][0]["given"].reverse(),
    lambda d: d.update(active=False),
])
def test_the_content_hash_changes_with_the_content(change):
    patient = sample("patient.json")
    changed = copy.deepcopy(patient)
    change(changed)
    assert hash_of(changed) != hash_of(patient)


def test_the_content_hash_is_sha256_of_sorted_compact_json_without_last_updated():
    document = {"resourceType": "Patient", "meta": {"lastUpdated": "2024-01-01T00:00:00Z"},
                "gender": "female", "birthDate": "1984-03-17"}
    expected = hashlib.sha256(
        b'{"birthDate":"1984-03-17","gender":"female","resourceType":"Patient"}').hexdigest()
    assert hash_of(document) == expected


# --- patient key --------------------------------------------------------------------


def key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def test_the_patient_key_is_the_hashed_first_identifier():
    assert read_fhir(body(sample("patient.json"))).patient_key == key(f"{MRN_SYSTEM}|MRN-204417")


def test_an_observation_about_a_patient_has_that_patients_key():
    # the Observation names its patient only by identifier (a logical reference)
    observation = read_fhir(body(sample("observation.json")))
    assert observation.patient_key == read_fhir(body(sample("patient.json"))).patient_key


def test_a_bundle_has_the_key_of_its_first_patient():
    bundle = sample("lab-report-bundle.json")
    assert read_fhir(body(bundle)).patient_key == key(f"{MRN_SYSTEM}|MRN-551903")


def test_the_patient_key_matches_the_journals_for_an_hl7_authority():
    # Switchboard's own Bundles put an HL7 authority that is not a URI in the assigner.
    message = parse(b"MSH|^~\\&|ADT|RH|EHR|RH|20240502||ADT^A08|1|P|2.5.1\r"
                    b"PID|||PATID1234^^^test1^MR||EVERYMAN^ADAM\r")
    patient = {"resourceType": "Patient", "identifier": [
        {"value": "PATID1234", "assigner": {"display": "test1"}}]}
    assert read_fhir(body(patient)).patient_key == hl7_patient_key(message)


@pytest.mark.parametrize("document", [
    {"resourceType": "Patient"},
    {"resourceType": "Patient", "identifier": [{"system": MRN_SYSTEM}]},
    {"resourceType": "Observation", "status": "final", "code": {"text": "Pulse"},
     "subject": {"reference": "Group/g1", "identifier": {"value": "G-1"}}},
    {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": MINIMAL["Encounter"]}]},
])
def test_no_patient_key_without_a_patient_identifier(document):
    assert read_fhir(body(document)).patient_key is None


# --- errors -------------------------------------------------------------------------

PATIENT = sample("patient.json")


def patient_with(**changes):
    return body({**PATIENT, **changes})


@pytest.mark.parametrize("raw, message, secret", [
    (b"MRN-204417 Okafor", "the body is not JSON", "Okafor"),
    (b"", "the body is not JSON", None),
    (b'{"resourceType": "Patient", "name": [{"family": "Okafor"}]', "the body is not JSON",
     "Okafor"),
    (b"\xff\xfeOkafor", "the body is not JSON", "Okafor"),
    (b'{"resourceType": "Patient", "multipleBirthInteger": NaN}', "the body is not JSON", None),
    (b'["Okafor"]', "JSON but not a FHIR resource", "Okafor"),
    (b'{"name": [{"family": "Okafor"}]}', "no resourceType", "Okafor"),
    (b'{"resourceType": 7, "id": "Okafor"}', "no resourceType", "Okafor"),
    (b'{"resourceType": "Questionnaire", "id": "Okafor"}', "Questionnaire is not supported",
     "Okafor"),
    (b'{"resourceType": "Okafor Adaeze"}', "a resourceType that FHIR R4 does not define", "Okafor"),
    (patient_with(birthDate="1984-13-45"), "invalid FHIR R4 Patient", "1984-13-45"),
    (patient_with(birthDate="Okafor"), "invalid FHIR R4 Patient", "Okafor"),
    (patient_with(active="Okafor"), "invalid FHIR R4 Patient", "Okafor"),
    (patient_with(Okafor="Adaeze"), "an element FHIR R4 does not define", "Okafor"),
    (patient_with(name="Okafor"), "invalid FHIR R4 Patient", "Okafor"),
    (patient_with(telecom=[{"system": "phone", "value": "555 0142  "}], id="Okafor Adaeze"),
     "invalid FHIR R4 Patient", "Okafor"),
    (patient_with(contained=[{"resourceType": "Okafor", "id": "x"}]), "cannot be read", "Okafor"),
    (b'{"resourceType": "Patient", "name": [{"family": "Oka\\ud800for"}]}',
     "invalid FHIR R4 Patient", "Oka"),
], ids=["text", "empty", "truncated", "not-utf8", "nan", "array", "no-resource-type",
        "resource-type-not-text", "unsupported", "unsupported-not-a-type-name", "bad-date",
        "name-as-date", "bad-boolean", "unknown-element", "wrong-shape", "bad-id",
        "unknown-contained-type", "lone-surrogate"])
def test_errors_say_what_is_wrong_without_quoting_the_input(raw, message, secret):
    with pytest.raises(FhirError) as caught:
        read_fhir(raw)
    error = caught.value
    assert isinstance(error, SwitchboardError)
    assert message in str(error)
    assert error.hint
    if secret:
        assert secret not in str(error)
        assert secret not in repr(error.args)


def test_an_unsupported_type_lists_the_supported_ones():
    with pytest.raises(FhirError) as caught:
        read_fhir(b'{"resourceType": "Questionnaire"}')
    assert str(caught.value) == (
        "Questionnaire is not supported: Switchboard reads Patient, Encounter, Observation, "
        "DiagnosticReport, ServiceRequest, Appointment, DocumentReference, Practitioner, "
        "PractitionerRole, Organization, Location, Device, MessageHeader, Provenance, "
        "RelatedPerson, Coverage, Account, EpisodeOfCare, Condition, AllergyIntolerance, "
        "Procedure, Immunization, Medication, MedicationRequest, MedicationDispense, "
        "MedicationAdministration, Specimen, Linkage, and Bundles of them. "
        "Send one of the supported resources, or route this feed elsewhere")


def test_an_invalid_birth_date_is_located_and_not_quoted():
    with pytest.raises(FhirError) as caught:
        read_fhir(patient_with(birthDate="1984-02-30"))
    assert caught.value.location == "Patient.birthDate"
    assert str(caught.value).startswith("Patient.birthDate: invalid FHIR R4 Patient: ")
    assert "1984-02-30" not in str(caught.value)


def test_a_missing_required_element_is_named():
    observation = {"resourceType": "Observation", "code": {"text": "Pulse"}}
    with pytest.raises(FhirError) as caught:
        read_fhir(body(observation))
    assert caught.value.location == "Observation.status"
    assert "a required element is missing" in str(caught.value)


def test_problems_inside_a_bundle_are_located_at_their_entry():
    bundle = sample("lab-report-bundle.json")
    bundle["entry"][0]["resource"]["birthDate"] = "1957-02-29"
    bundle["entry"][4]["resource"]["effectiveDateTime"] = "yesterday"
    with pytest.raises(FhirError) as caught:
        read_fhir(body(bundle))
    text = str(caught.value)
    assert caught.value.location == "Bundle.entry[0].resource.birthDate"
    assert "Bundle.entry[4].resource.effectiveDateTime" in text
    assert "1957-02-29" not in text and "yesterday" not in text


def test_only_the_first_few_problems_are_listed():
    patient = {"resourceType": "Patient", "birthDate": "x1", "active": "x2", "gender": 3,
               "deceasedBoolean": "x4", "multipleBirthBoolean": "x5"}
    with pytest.raises(FhirError) as caught:
        read_fhir(body(patient))
    assert str(caught.value).count("Patient.") == 3
    assert "(and 2 more)" in str(caught.value)


@pytest.mark.parametrize("entry, message, location", [
    ({"resource": {"resourceType": "Questionnaire"}}, "Questionnaire is not supported",
     "Bundle.entry[1].resource"),
    ({"resource": {"resourceType": "Bundle", "type": "collection"}}, "Bundle is not supported",
     "Bundle.entry[1].resource"),
    ({"resource": {"id": "x"}}, "has no resourceType", "Bundle.entry[1].resource"),
])
def test_every_entry_of_a_bundle_must_be_supported(entry, message, location):
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": MINIMAL["Patient"]}, entry]}
    with pytest.raises(FhirError) as caught:
        read_fhir(body(bundle))
    assert message in str(caught.value)
    assert caught.value.location == location


def nested_extensions(depth):
    extension = {"url": "http://example.org/x", "valueString": "Okafor"}
    for _ in range(depth):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    return {"resourceType": "Patient", "extension": [extension]}


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,
    body(nested_extensions(400)),
], ids=["json", "extensions"])
def test_nesting_too_deep_to_read_is_a_fhir_error(raw):
    with pytest.raises(FhirError, match="nested too deeply") as caught:
        read_fhir(raw)
    assert "Okafor" not in str(caught.value)


@pytest.mark.parametrize("element, value", [
    ("birthDate", "1984-13-45"), ("birthDate", "Okafor"), ("active", "Okafor"),
    ("gender", 19840317), ("multipleBirthInteger", "Okafor"), ("id", "Okafor Adaeze"),
    ("deceasedDateTime", "1984-03-17T10:00:00"), ("name", [{"family": ["Okafor"]}]),
])
def test_pydantic_messages_do_not_quote_the_input_but_its_text_does(element, value):
    """Why the problems are worded from their parts: str(ValidationError) carries
    input_value=..., its messages do not (and are checked anyway)."""
    with pytest.raises(ValidationError) as caught:
        Patient.model_validate({"resourceType": "Patient", element: value})
    shown = "Okafor" if "Okafor" in json.dumps(value) else str(value)
    assert shown in str(caught.value)
    assert all(shown not in problem["msg"] for problem in caught.value.errors())


# --- properties ---------------------------------------------------------------------

MARK = "PHI-"
marked_text = st.text(max_size=12).map(lambda text: MARK + text)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | marked_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(marked_text, inner, max_size=4),
    max_leaves=12,
)
DOCUMENTS = [sample(name) for name in SAMPLE_NAMES]


def read_or_reject(raw: bytes) -> None:
    try:
        read_fhir(raw)
    except FhirError as error:
        assert MARK not in str(error)


@given(st.binary(max_size=512))
def test_random_bytes_raise_only_fhir_error(raw):
    read_or_reject(raw)


@given(st.sampled_from([None, "Patient", "Bundle", "Observation", "Appointment", "Basic"]),
       st.dictionaries(st.sampled_from(["id", "entry", "type", "status", "code", "name",
                                        "identifier", "meta", "birthDate", "subject"]),
                       json_values, max_size=5))
def test_random_json_raises_only_fhir_error_without_quoting_it(resource_type, fields):
    document = dict(fields)
    if resource_type:
        document["resourceType"] = resource_type
    read_or_reject(body(document))


@st.composite
def damaged_documents(draw):
    """A sample document with one of its elements replaced by marked random JSON."""
    document = copy.deepcopy(draw(st.sampled_from(DOCUMENTS)))
    where = draw(st.sampled_from(
        [p for p in positions(document) if p and p[-1] != "resourceType"]))
    node = document
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = draw(json_values)
    return document


@given(damaged_documents())
def test_damaged_documents_raise_only_fhir_error_without_quoting_them(document):
    read_or_reject(body(document))
