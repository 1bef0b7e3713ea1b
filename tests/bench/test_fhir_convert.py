"""The conversion benchmark runs end to end (every corpus Bundle valid to both
validators first) and sets its figures beside FHIR-Converter's published ones; the
figures themselves are measured by bench/run, never asserted in a test."""

from __future__ import annotations

from bench import fhir_convert


def test_the_benchmark_measures_every_contender_and_finds_the_published_figures():
    result = fhir_convert.run(rounds=1, seconds=0.01)
    contenders = {"parse+map", "encode", "encode+JSON", "convert", "convert+R4B",
                  "convert+Medplum"}
    assert set(result["median_msgs_per_s"]) == contenders
    assert all(rate > 0 for rate in result["median_msgs_per_s"].values())
    assert set(result["p50_us_per_bundle"]) == contenders
    assert result["bundles"] >= 77
    theirs = result["fhir_converter"]
    assert theirs["messages_published"] == 132
    assert theirs["shared_messages"] >= 71
