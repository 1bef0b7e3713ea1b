"""Switchboard's FHIR Bundles beside those FHIR-Converter expects for its 71 sample
messages (tests/corpus/fhir/fhir-converter-expected, MIT): the share of FHIR-Converter's
resource types that Switchboard's bundle also has, and the share of key fields that
agree. The targets are 95% each; until the encoder reaches them, these figures are a
floor that may only rise."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from engine.fhir.bundle import encode_bundle
from engine.hl7v2 import parse
from engine.rules.rule_set import compile_rule_set
from engine.rules.source import read_rule_source
from tests.fhir_comparison import Score, compare
from tests.queue_rows import ROOT
from tests.samples import CORPUS

EXPECTED = sorted((CORPUS.parent / "fhir" / "fhir-converter-expected")
                  .glob("*.expected.json"))
# Measured when the comparison was written; raise them as the encoder grows.
TYPES_FLOOR = 0.85
FIELDS_FLOOR = 0.81


def message_of(expected_file: Path) -> Path:
    """The sample message an expected bundle was made from."""
    name = expected_file.name.removesuffix(".expected.json")
    return CORPUS / "fhir-converter" / f"{name}.hl7"


def corpus_score(validator) -> Score:
    rule_set = compile_rule_set(read_rule_source(ROOT))
    total = Score(0, 0, 0, 0)
    for expected_file in EXPECTED:
        message_file = message_of(expected_file)
        record = rule_set.convert(parse(message_file.read_bytes())).record
        total += compare(valid_entries(encode_bundle(record, message_file.stem), validator),
                         json.loads(expected_file.read_text()))
    return total


def valid_entries(bundle: dict, validator) -> dict:
    """The Bundle with only the resources both validators accept: a resource counts
    for its type only when it is valid R4 to fhir.resources (R4B) and to Medplum."""
    refused = {int(match.group(1)) for issue in validator.validate(bundle)
               for expression in issue.get("expression") or ()
               if (match := _ENTRY.match(expression))}
    kept = []
    for index, entry in enumerate(bundle.get("entry", ())):
        resource = entry["resource"]
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except ValueError:
            continue
        if index not in refused:
            kept.append(entry)
    return {**bundle, "entry": kept}


_ENTRY = re.compile(r"Bundle\.entry\[(\d+)\]")


def test_every_expected_bundle_has_its_message():
    assert len(EXPECTED) == 71
    for expected_file in EXPECTED:
        assert message_of(expected_file).exists(), expected_file.name


def test_the_corpus_figures_do_not_fall(fhir_validator):
    total = corpus_score(fhir_validator)
    types = total.types_present / total.types_expected
    fields = total.fields_agreeing / total.fields_compared
    print(f"resource types {total.types_present}/{total.types_expected} ({types:.1%}); "
          f"key fields {total.fields_agreeing}/{total.fields_compared} ({fields:.1%}); "
          f"missing types: {sorted(total.missing_types)}")
    assert types >= TYPES_FLOOR and fields >= FIELDS_FLOOR


PATIENT = {"resourceType": "Patient", "identifier": [{"value": "12"}, {"value": "34"}],
           "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female"}
OBSERVATION = {"resourceType": "Observation", "code": {"coding": [{"code": "2823-3"}]},
               "valueQuantity": {"value": 4.10}}


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}


@pytest.mark.parametrize("ours, expected_score", [
    (bundle(PATIENT, OBSERVATION), (3, 2, 6, 6)),
    (bundle({**PATIENT, "identifier": [{"value": "12"}]}), (3, 1, 6, 4)),
    (bundle({**OBSERVATION, "valueQuantity": {"value": 4.2}}), (3, 1, 6, 0)),
    (bundle(), (3, 0, 6, 0)),
])
def test_the_comparison_counts_what_is_missing_or_different(ours, expected_score):
    expected = bundle(PATIENT, OBSERVATION, {"resourceType": "MessageHeader"})
    score = compare(ours, expected)
    assert (score.types_expected, score.types_present, score.fields_compared,
            score.fields_agreeing) == expected_score
