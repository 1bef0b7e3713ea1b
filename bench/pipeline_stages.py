"""Benchmark: where the pipeline's time goes, stage by stage, over the sample corpus
with the shipped rules: parse; parse + normalise (mapping); + the schema check, route
and minimise (``RuleSet.process``); + encode for every destination. Each contender does
all the stages before it, so the differences between neighbours are the stages' costs.
They take turns within every round; the report gives median messages per second and
microseconds per message.

    python -m bench.pipeline_stages [--rounds N] [--seconds S] [--json FILE]
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import harness
from engine.encoders import Delivery, encode
from engine.errors import ParseError
from engine.hl7v2 import parse
from engine.rules.rule_set import RuleSet, compile_rule_set
from engine.rules.source import read_rule_source

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus" / "hl7v2"
SENT_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def messages() -> list[bytes]:
    found = []
    for path in sorted(CORPUS.glob("*/*.hl7")):
        raw = path.read_bytes()
        try:
            parse(raw)
        except ParseError:
            continue
        found.append(raw)
    return found


def contenders(rule_set: RuleSet) -> dict[str, Any]:
    def encoded(raw: bytes) -> int:
        outcome = rule_set.process(parse(raw))
        for delivery in outcome.deliveries:
            connection = rule_set.connections[delivery.destination]
            encode(str(connection.format), delivery.payload,
                   Delivery("bench", delivery.destination, SENT_AT))
        return len(outcome.deliveries)

    return {
        "parse": parse,
        "+normalise": lambda raw: rule_set.convert(parse(raw)),
        "+check,route,minimise": lambda raw: rule_set.process(parse(raw)),
        "+encode": encoded,
    }


def run(rounds: int, seconds: float) -> dict[str, object]:
    inputs = messages()
    samples = harness.interleaved_rounds(
        contenders(compile_rule_set(read_rule_source(ROOT))), inputs, rounds, seconds)
    result = {"benchmark": "pipeline_stages", "messages": len(inputs),
              **harness.timing(rounds, seconds, samples)}
    medians = result["median_msgs_per_s"]
    assert isinstance(medians, dict)
    result["median_us_per_msg"] = {name: 1e6 / rate for name, rate in medians.items()}
    return result


def report(result: dict[str, object], rounds: int, seconds: float) -> None:
    print(f"Pipeline stages, {result['messages']} corpus messages, "
          f"{harness.describe_rounds(rounds, seconds)} (each line includes the ones above):")
    medians = result["median_msgs_per_s"]
    micros = result["median_us_per_msg"]
    assert isinstance(medians, dict) and isinstance(micros, dict)
    harness.print_medians(medians, 22, lambda name: f"  {micros[name]:8.1f} us/msg")


def main(argv: list[str] | None = None) -> int:
    return harness.command_line(__doc__ or "", run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
