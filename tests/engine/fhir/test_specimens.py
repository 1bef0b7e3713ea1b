"""Specimens after the v2-to-FHIR IG's SPM[Specimen] and OBR[Specimen] maps, named by
the order's ServiceRequest, the report's DiagnosticReport and the Observations."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from engine.fhir import encode_bundle
from engine.hl7v2 import parse
from engine.rules.minimise import compile_scope
from tests.engine.fhir.corpus import convert, mapper
from tests.engine.fhir.test_observations import ORU, resources, url_of
from tests.samples import CORPUS

CONVERTER = CORPUS / "fhir-converter"


def bundle_of(text: str, scope: list[str] | None = None, message_id: str = "m") -> dict:
    record = mapper().convert(parse(text.encode())).record
    if scope is not None:
        record = compile_scope(scope).project(record)
    bundle = encode_bundle(record, message_id)
    Bundle.model_validate(bundle)
    return bundle


def test_an_spm_gives_a_specimen_the_order_report_and_results_name():
    bundle = bundle_of(ORU)
    specimens = url_of(bundle, "Specimen")
    from_spm, from_obr = resources(bundle, "Specimen")
    assert from_spm["identifier"] == [{"type": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
        "value": "SP-1"}]
    assert from_spm["type"] == {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0487", "code": "BLD",
        "display": "Whole blood"}]}
    assert from_spm["collection"] == {"collectedDateTime": "2024-01-01T07:55:00+01:00"}
    (patient,) = url_of(bundle, "Patient")
    assert from_spm["subject"] == {"reference": patient}
    # OBR[Specimen]: the OBR's collection time (OBR-7)
    assert from_obr["collection"] == {"collectedDateTime": "2024-01-01T08:00:00+01:00"}
    named = [{"reference": url} for url in specimens]
    (order,), (report,) = resources(bundle, "ServiceRequest"), resources(bundle, "DiagnosticReport")
    assert order["specimen"] == named
    assert report["specimen"] == named
    assert [o["specimen"] for o in resources(bundle, "Observation")] == [named[0]] * 2


def test_each_spm_belongs_to_the_obr_before_it():
    bundle = encode_bundle(convert(CONVERTER / "LAB-ORU-1.hl7"), "m")
    Bundle.model_validate(bundle)
    urls = set(url_of(bundle, "Specimen"))
    named = [{s["reference"] for s in report.get("specimen", ())}
             for report in resources(bundle, "DiagnosticReport")]
    assert all(names <= urls for names in named)
    assert len(named) == 2 and not named[0] & named[1]


def test_obr_specimen_fields_give_the_collector_and_volume():
    bundle = encode_bundle(convert(CONVERTER / "ORU-R01-01.hl7"), "m")
    from_obr = resources(bundle, "Specimen")[-1]
    assert from_obr["accessionIdentifier"] == {"value": "845439"}
    assert from_obr["collection"]["quantity"] == {"value": 150, "unit": "lb"}
    collector = from_obr["collection"]["collector"]["reference"]
    (practitioner,) = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == collector]
    assert practitioner["resourceType"] == "Practitioner"
    assert practitioner["identifier"][0]["value"] == "10535"


def test_an_order_message_the_ig_makes_no_obr_specimen_for_gives_none():
    """ORM_O01 maps its OBR to a ServiceRequest only."""
    bundle = bundle_of(ORU.replace("ORU^R01^ORU_R01", "ORM^O01^ORM_O01").replace(
        "SPM|", "ZZZ|"))
    assert resources(bundle, "Specimen") == []


def test_a_scope_without_specimens_sends_none_and_one_with_types_only_types():
    assert resources(bundle_of(ORU, ["patient", "orders", "results"]), "Specimen") == []
    (specimen,) = resources(bundle_of(ORU, ["specimens[*].type"]), "Specimen")
    assert set(specimen) == {"resourceType", "id", "type"}
    # the link alone says nothing of a specimen
    assert resources(bundle_of(ORU, ["specimens[*].order_segment"]), "Specimen") == []


def test_the_same_message_gives_the_same_specimen_ids():
    assert url_of(bundle_of(ORU), "Specimen") == url_of(bundle_of(ORU), "Specimen")
    assert not set(url_of(bundle_of(ORU), "Specimen")) & set(
        url_of(bundle_of(ORU, message_id="other"), "Specimen"))


def test_medplum_accepts_the_specimens(fhir_validator):
    for name in ("ORU-R01-01", "OML-O21-03", "LAB-ORU-1"):
        for specimen in resources(encode_bundle(convert(CONVERTER / f"{name}.hl7"), name),
                                  "Specimen"):
            assert fhir_validator.validate(specimen) == [], name
