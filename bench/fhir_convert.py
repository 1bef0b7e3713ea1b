"""Benchmark: HL7 v2 to FHIR R4 conversion throughput in bundles per second, without
validation and with each of the two validators the tests trust, in one run.

Every message of the sample corpus is converted the way a FHIR delivery converts it:
parse, map to the canonical record with the shipped rules, encode the transaction
Bundle (``encode_bundle``) and serialise it as the delivery does (compact JSON,
``encode_canonical_json``). The contenders, taking turns within every round:
``parse+map`` (message to record), ``encode`` (record to Bundle) and ``encode+JSON``
(record to Bundle text) apart; ``convert`` (message to Bundle text: the figure the
2,000 bundles/s target is about); ``convert+R4B`` (plus fhir.resources'
``Bundle.model_validate``) and ``convert+Medplum`` (plus Medplum's R4 validator:
tests/fhir_server/validate.mjs on Node, one Bundle out and one answer back over a pipe,
as the tests run it). Every Bundle must pass both validators before anything is
timed. The report gives the median bundles per second, each contender's median time
per bundle (p50) and the median ratios, and sets ``convert`` beside FHIR-Converter's
own published per-message times (bench/fhir_converter_published.json) on the
messages both corpora hold.

    python -m bench.fhir_convert [--rounds N] [--seconds S] [--json FILE]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from bench import harness
from engine.encoders.canonical_json import encode_canonical_json
from engine.fhir import encode_bundle
from engine.hl7v2 import parse
from engine.rules.rule_set import RuleSet, compile_rule_set
from engine.rules.source import read_rule_source
from tests.medplum_fhir import MedplumValidator

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus" / "hl7v2"
PUBLISHED = Path(__file__).with_name("fhir_converter_published.json")
TARGET = 2000.0
"""Bundles per second without validation, on this machine (issue 18)."""


@dataclass(frozen=True)
class Sample:
    """One corpus message, with what the contenders after parse+map start from."""
    name: str
    raw: bytes
    record: Mapping[str, Any]

    @property
    def message_id(self) -> str:
        return self.name


Durations = dict[str, list[float]]
"""Seconds per call, by sample name, over every pass of every round."""


def samples(rule_set: RuleSet) -> list[Sample]:
    found = []
    for path in sorted(CORPUS.glob("**/*.hl7")):
        raw = path.read_bytes()
        name = path.relative_to(CORPUS).as_posix()
        found.append(Sample(name, raw, rule_set.convert(parse(raw)).record))
    return found


def contenders(rule_set: RuleSet, medplum: MedplumValidator) -> dict[str, Callable[[Sample], Any]]:
    def parse_map(sample: Sample) -> Mapping[str, Any]:
        return rule_set.convert(parse(sample.raw)).record

    def encode(sample: Sample) -> dict[str, Any]:
        return encode_bundle(sample.record, sample.message_id)

    def encode_json(sample: Sample) -> str:
        return encode_canonical_json(encode_bundle(sample.record, sample.message_id))

    def converted(sample: Sample) -> tuple[dict[str, Any], str]:
        bundle = encode_bundle(parse_map(sample), sample.message_id)
        return bundle, encode_canonical_json(bundle)

    def convert(sample: Sample) -> str:
        return converted(sample)[1]

    def convert_r4b(sample: Sample) -> Bundle:
        return Bundle.model_validate(converted(sample)[0])

    def convert_medplum(sample: Sample) -> dict[str, Any]:
        return medplum.report(converted(sample)[1])

    return {"parse+map": parse_map, "encode": encode, "encode+JSON": encode_json,
            "convert": convert, "convert+R4B": convert_r4b, "convert+Medplum": convert_medplum}


def check_valid(inputs: Sequence[Sample], medplum: MedplumValidator) -> None:
    """Stop before timing if any corpus Bundle fails either validator: a rate of
    conversions that give invalid FHIR measures nothing worth having. Only the paths
    found wrong are named, never values."""
    for sample in inputs:
        bundle = encode_bundle(sample.record, sample.message_id)
        try:
            Bundle.model_validate(bundle)
        except ValidationError as error:
            paths = [".".join(map(str, found["loc"])) for found in error.errors()[:5]]
            raise SystemExit(f"{sample.name}: R4B refuses the Bundle at {paths}") from None
        if issues := medplum.validate(bundle):
            where = [issue.get("expression") for issue in issues[:5]]
            raise SystemExit(f"{sample.name}: Medplum refuses the Bundle at {where}")


def timed_rate(work: Callable[[Sample], object], inputs: Sequence[Sample], seconds: float,
               durations: Durations) -> float:
    """Bundles per second over repeated passes for about ``seconds``, each call's time
    kept in ``durations`` (the clock read around a call costs well under 1% of it)."""
    clock = time.perf_counter
    done = 0
    start = clock()
    deadline = start + seconds
    while True:
        for sample in inputs:
            began = clock()
            work(sample)
            durations[sample.name].append(clock() - began)
        done += len(inputs)
        now = clock()
        if now >= deadline:
            return done / (now - start)


def interleaved_rounds(work: Mapping[str, Callable[[Sample], object]],
                       inputs: Sequence[Sample], rounds: int, seconds: float,
                       ) -> tuple[harness.Samples, dict[str, Durations]]:
    rates: harness.Samples = {name: [] for name in work}
    durations: dict[str, Durations] = {
        name: {sample.name: [] for sample in inputs} for name in work}
    for _ in range(rounds):
        for name, each in work.items():
            rates[name].append(timed_rate(each, inputs, seconds, durations[name]))
    return rates, durations


def p50_us(durations: Durations) -> float:
    return 1e6 * statistics.median(t for times in durations.values() for t in times)


def beside_fhir_converter(convert: Durations) -> dict[str, object]:
    """``convert``'s median time per message beside FHIR-Converter's published mean on
    each message both corpora hold (different machines: the ratio is indicative)."""
    published = json.loads(PUBLISHED.read_text())
    theirs: dict[str, float] = published["mean_ms_by_file"]
    ours = {name.rsplit("/", 1)[-1]: 1e3 * statistics.median(times)
            for name, times in convert.items() if name.startswith("fhir-converter/")}
    shared = sorted(set(ours) & set(theirs))
    return {
        "source": published["source"],
        "environment": published["environment"],
        "messages_published": len(theirs),
        "published_median_ms_per_message": statistics.median(theirs.values()),
        "published_msgs_per_s_one_at_a_time": len(theirs) / sum(theirs.values()) * 1e3,
        "shared_messages": len(shared),
        "shared_published_msgs_per_s": len(shared) / sum(theirs[n] for n in shared) * 1e3,
        "shared_switchboard_msgs_per_s": len(shared) / sum(ours[n] for n in shared) * 1e3,
        "shared_median_ratio_published_ms_over_switchboard_ms": statistics.median(
            theirs[n] / ours[n] for n in shared),
    }


def run(rounds: int, seconds: float) -> dict[str, object]:
    rule_set = compile_rule_set(read_rule_source(ROOT))
    inputs = samples(rule_set)
    with tempfile.TemporaryDirectory() as folder:
        medplum = MedplumValidator(Path(folder) / "validate.log")
        try:
            check_valid(inputs, medplum)
            rates, durations = interleaved_rounds(
                contenders(rule_set, medplum), inputs, rounds, seconds)
        finally:
            medplum.close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "benchmark": "fhir_convert",
        "bundles": len(inputs),
        **harness.timing(rounds, seconds, rates),
        "p50_us_per_bundle": {name: p50_us(d) for name, d in durations.items()},
        "median_ratio_convert_over": {
            other: harness.median_ratio(rates, "convert", other)
            for other in ("convert+R4B", "convert+Medplum")},
        "target_bundles_per_s": TARGET,
        "target_met": medians["convert"] >= TARGET,
        "fhir_converter": beside_fhir_converter(durations["convert"]),
    }


def report(result: dict[str, object], rounds: int, seconds: float) -> None:
    medians, p50 = result["median_msgs_per_s"], result["p50_us_per_bundle"]
    ratios, theirs = result["median_ratio_convert_over"], result["fhir_converter"]
    assert isinstance(medians, dict) and isinstance(p50, dict)
    assert isinstance(ratios, dict) and isinstance(theirs, dict)
    print(f"HL7 v2 to FHIR Bundle JSON, {result['bundles']} corpus messages, "
          f"{harness.describe_rounds(rounds, seconds)} (msgs/s = bundles/s):")
    harness.print_medians(medians, 16, lambda name: f"  p50 {p50[name]:8.1f} us/bundle" + (
        f"   convert is {ratios[name]:.1f}x" if name in ratios else ""))
    verdict = "met" if result["target_met"] else "NOT met"
    print(f"  target {TARGET:,.0f} bundles/s without validation: {verdict}")
    print(f"  FHIR-Converter's published figures ({theirs['environment'].split(';')[0]}): "
          f"median {theirs['published_median_ms_per_message']:,.1f} ms/message over its "
          f"{theirs['messages_published']} samples, "
          f"{theirs['published_msgs_per_s_one_at_a_time']:.1f} msgs/s one at a time")
    ratio = theirs["shared_median_ratio_published_ms_over_switchboard_ms"]
    print(f"  on the {theirs['shared_messages']} messages both corpora hold: FHIR-Converter "
          f"{theirs['shared_published_msgs_per_s']:.1f} msgs/s (published), Switchboard's "
          f"convert {theirs['shared_switchboard_msgs_per_s']:,.0f} msgs/s (here); median "
          f"per-message ratio {ratio:,.0f}x")


def main(argv: list[str] | None = None) -> int:
    return harness.command_line(__doc__.splitlines()[0], run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
