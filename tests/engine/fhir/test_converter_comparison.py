"""Switchboard's FHIR Bundles beside those FHIR-Converter expects for its 71 sample
messages (tests/corpus/fhir/fhir-converter-expected, MIT): the share of FHIR-Converter's
resource types that Switchboard's bundle also has, and the share of key fields that
agree. The targets are 95% each; until the encoder reaches them, these figures are a
floor that may only rise."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from engine.fhir.bundle import encode_bundle
from engine.hl7v2 import parse
from engine.rules.rule_set import compile_rule_set
from engine.rules.source import read_rule_source
from tests.engine.fhir.ig_decisions import (
    EXCLUDED_IN_MESSAGE,
    EXCLUDED_TYPES,
    FIELD_DECISIONS,
)
from tests.fhir_comparison import Score, compare, key_fields, resource_types
from tests.queue_rows import ROOT
from tests.samples import CORPUS

EXPECTED = sorted((CORPUS.parent / "fhir" / "fhir-converter-expected")
                  .glob("*.expected.json"))
# Measured when the comparison was written; raise them as the encoder grows.
TYPES_FLOOR = 0.93
FIELDS_FLOOR = 0.85


def message_of(expected_file: Path) -> Path:
    """The sample message an expected bundle was made from."""
    name = expected_file.name.removesuffix(".expected.json")
    return CORPUS / "fhir-converter" / f"{name}.hl7"


@dataclass
class Figures:
    """The corpus comparison: raw, and after the IG's exclusions and decisions (see
    tests/engine/fhir/ig_decisions.py), each capped at 5% of what is compared."""

    raw: Score
    excluded_types: int = 0
    decided_fields: int = 0
    decisions_broken: list[str] = field(default_factory=list)

    @property
    def types(self) -> float:
        return self.raw.types_present / (self.raw.types_expected - self.types_left_out)

    @property
    def fields(self) -> float:
        return self.raw.fields_agreeing / (self.raw.fields_compared - self.fields_left_out)

    @property
    def types_left_out(self) -> int:
        return min(self.excluded_types, int(self.raw.types_expected * 0.05))

    @property
    def fields_left_out(self) -> int:
        return min(self.decided_fields, int(self.raw.fields_compared * 0.05))


def corpus_figures(validator) -> Figures:
    rule_set = compile_rule_set(read_rule_source(ROOT))
    figures = Figures(Score(0, 0, 0, 0))
    for expected_file in EXPECTED:
        message_file = message_of(expected_file)
        stem = message_file.stem
        record = rule_set.convert(parse(message_file.read_bytes())).record
        ours = valid_entries(encode_bundle(record, stem), validator)
        expected = json.loads(expected_file.read_text())
        figures.raw += compare(ours, expected)
        missing = resource_types(expected) - resource_types(ours)
        figures.excluded_types += sum(
            1 for kind in missing
            if kind in EXCLUDED_TYPES or (stem, kind) in EXCLUDED_IN_MESSAGE)
        wanted, made = key_fields(expected), key_fields(ours)
        for key, count in wanted.items():
            short = count - min(count, made[key])
            decision = next((d for d in FIELD_DECISIONS if d.applies(stem, key)), None)
            if short and decision is not None:
                figures.decided_fields += short
                if not decision.check(ours, record):
                    figures.decisions_broken.append(f"{stem}: {decision.name}")
    return figures


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
    figures = corpus_figures(fhir_validator)
    raw = figures.raw
    print(f"raw: resource types {raw.types_present}/{raw.types_expected}, key fields "
          f"{raw.fields_agreeing}/{raw.fields_compared}; after the IG's exclusions "
          f"({figures.excluded_types} types, {figures.types_left_out} within the cap) and "
          f"decisions ({figures.decided_fields} fields, {figures.fields_left_out} within "
          f"the cap): types {figures.types:.1%}, key fields {figures.fields:.1%}; "
          f"missing types: {sorted(raw.missing_types)}")
    # Where Switchboard follows the IG, it gives the IG's answer.
    assert figures.decisions_broken == []
    assert figures.types >= TYPES_FLOOR and figures.fields >= FIELDS_FLOOR


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
