"""Benchmark: Switchboard's HL7 v2 parser against python-hl7, side by side in one run.

Each message of the sample corpus is parsed and five fields are read from it
(MSH-9, MSH-10, PID-3, PID-5, PV1-2; the first primitive of each). Two naive
splitters are measured as well: an eager split of every level into nested lists (what
a naive parser does) and a split of segments and fields only (the least work a parser
that splits up front can do; it validates, unescapes and handles nothing). The
contenders take turns within every round, so the machine's noise hits them alike; the
report gives the median messages per second and the median of the per-round ratios.

    python -m bench.hl7v2_parse [--rounds N] [--seconds S] [--json FILE]
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hl7

from bench import harness
from engine.hl7v2 import parse

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "hl7v2"
FIELDS = [("MSH", 9), ("MSH", 10), ("PID", 3), ("PID", 5), ("PV1", 2)]
PATHS = [f"{segment}-{field}" for segment, field in FIELDS]


def load_corpus() -> list[bytes]:
    """Every sample, as CR-terminated UTF-8 without a BOM: the one form python-hl7 reads."""
    messages = []
    for path in sorted(CORPUS.glob("*/*.hl7")):
        text = path.read_bytes().decode("utf-8").lstrip("\ufeff")
        messages.append(re.sub(r"\r\n|\r|\n", "\r", text).strip().encode())
    return messages


def switchboard(raw: bytes) -> list[object]:
    message = parse(raw)
    return [message.get(path) for path in PATHS]


def python_hl7(raw: bytes) -> list[object]:
    message = hl7.parse(raw)
    values: list[object] = []
    for segment, field in FIELDS:
        try:
            values.append(message.extract_field(segment, 1, field, 1, 1))
        except (KeyError, IndexError):
            values.append(None)
    return values


def eager_split(raw: bytes) -> list[object]:
    """Every level split up front into nested lists: python-hl7's structure without its
    objects, the usual naive parser."""
    segments = [
        [
            [[c.split("&") for c in r.split("^")] for r in f.split("~")]
            for f in s.split("|")
        ]
        for s in raw.decode("utf-8").split("\r")
    ]
    return _five_fields(segments, lambda field: field[0][0][0])


def fields_split(raw: bytes) -> list[object]:
    """Segments and fields only, then the first primitive of the five fields read: the
    least work any parser that splits up front can do."""
    segments = [s.split("|") for s in raw.decode("utf-8").split("\r")]
    return _five_fields(
        segments, lambda field: field.split("~")[0].split("^")[0].split("&")[0]
    )


def _five_fields(segments: list[Any], first_primitive: Callable[[Any], object]) -> list[object]:
    by_id: dict[str, Any] = {}
    for fields in segments:
        segment_id = fields[0] if isinstance(fields[0], str) else fields[0][0][0][0]
        by_id.setdefault(segment_id, fields)
    values: list[object] = []
    for segment, field in FIELDS:
        found = by_id.get(segment)
        index = field - 1 if segment == "MSH" else field
        present = found is not None and index < len(found)
        values.append(first_primitive(found[index]) if present else None)
    return values


CONTENDERS: dict[str, Callable[[bytes], list[object]]] = {
    "switchboard": switchboard,
    "python-hl7": python_hl7,
    "eager-split": eager_split,
    "fields-split": fields_split,
}


def run(rounds: int, seconds: float) -> dict[str, object]:
    corpus = load_corpus()
    for raw in corpus:  # warm caches, and check the splitters read what Switchboard reads
        expected = [value or None for value in switchboard(raw)]
        python_hl7(raw)
        for work in (eager_split, fields_split):
            assert [value or None for value in work(raw)] == expected, work.__name__
    samples = harness.interleaved_rounds(CONTENDERS, corpus, rounds, seconds)
    ratios = {
        other: harness.median_ratio(samples, "switchboard", other)
        for other in CONTENDERS
        if other != "switchboard"
    }
    return {
        "benchmark": "parse + 5 field reads per message",
        "messages_in_corpus": len(corpus),
        **harness.timing(rounds, seconds, samples),
        "median_ratio_switchboard_over": ratios,
    }


def report(result: dict[str, object], rounds: int, seconds: float) -> None:
    medians = result["median_msgs_per_s"]
    ratios = result["median_ratio_switchboard_over"]
    assert isinstance(medians, dict) and isinstance(ratios, dict)
    print(f"{result['benchmark']}, {result['messages_in_corpus']} messages, "
          f"{harness.describe_rounds(rounds, seconds)}")
    harness.print_medians(medians, 12, lambda name: "" if name == "switchboard"
                          else f"   switchboard is {ratios[name]:.1f}x")


def main(argv: list[str] | None = None) -> int:
    return harness.command_line(__doc__.splitlines()[0], run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
