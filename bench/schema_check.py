"""Benchmark: checking canonical records against the canonical schema, the compiled
check the pipeline uses (fastjsonschema) against jsonschema's validator, in one run.

The records are the sample corpus converted by the shipped mappings. Both contenders
must agree on every record before anything is timed. They take turns within every
round; the report gives the median records per second and the median ratio.

    python -m bench.schema_check [--rounds N] [--seconds S] [--json FILE]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench import harness
from engine.errors import ParseError
from engine.hl7v2 import parse
from engine.model.schemas import fast_check, validator
from engine.rules.rule_set import build_mapper
from engine.rules.source import read_rule_source

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus" / "hl7v2"


def records() -> list[dict[str, Any]]:
    mapper = build_mapper(read_rule_source(ROOT))
    found = []
    for path in sorted(CORPUS.glob("*/*.hl7")):
        try:
            found.append(mapper.convert(parse(path.read_bytes())).record)
        except ParseError:
            continue
    return found


def run(rounds: int, seconds: float) -> dict[str, object]:
    inputs = records()
    compiled, full = fast_check("canonical"), validator("canonical")

    def compiled_check(record: dict[str, Any]) -> bool:
        compiled(record)  # raises JsonSchemaException when the record is invalid
        return True

    for record in inputs:
        if not full.is_valid(record) or not compiled_check(record):
            raise SystemExit("the two checks disagree on a corpus record")
    samples = harness.interleaved_rounds(
        {"fastjsonschema": compiled_check, "jsonschema": full.is_valid}, inputs, rounds,
        seconds)
    return {
        "benchmark": "schema_check",
        "records": len(inputs),
        **harness.timing(rounds, seconds, samples),
        "median_ratio_fastjsonschema_over_jsonschema": harness.median_ratio(
            samples, "fastjsonschema", "jsonschema"),
    }


def report(result: dict[str, object], rounds: int, seconds: float) -> None:
    print(f"Canonical schema check, {result['records']} corpus records, "
          f"{harness.describe_rounds(rounds, seconds)}:")
    medians = result["median_msgs_per_s"]
    assert isinstance(medians, dict)
    harness.print_medians(medians, 15)
    ratio = result["median_ratio_fastjsonschema_over_jsonschema"]
    print(f"  fastjsonschema / jsonschema: {ratio:.1f}x (median of per-round ratios)")


def main(argv: list[str] | None = None) -> int:
    return harness.command_line(__doc__ or "", run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
