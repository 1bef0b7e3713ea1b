"""Every Bundle Switchboard makes from the HL7 v2 corpus is valid FHIR R4 to two
independent validators: fhir.resources' R4B models and Medplum's R4 validator (run by
Node, see tests/medplum_fhir.py). A resource either one refuses fails the test."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from engine.fhir import encode_bundle
from tests.engine.fhir.corpus import convert
from tests.samples import CORPUS_FILES


def test_every_corpus_bundle_passes_both_validators(fhir_validator):
    refused = {}
    for path in CORPUS_FILES:
        bundle = encode_bundle(convert(path), path.stem)
        try:
            Bundle.model_validate(bundle)
        except ValueError as error:
            refused[path.name] = f"R4B: {str(error)[:300]}"
            continue
        issues = fhir_validator.validate(bundle)
        if issues:
            refused[path.name] = "Medplum: " + "; ".join(
                f"{issue.get('expression')}: {issue.get('details') or issue.get('diagnostics')}"
                for issue in issues[:5])
    assert len(CORPUS_FILES) >= 77
    assert refused == {}
