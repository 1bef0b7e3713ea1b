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

import argparse
import json
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hl7

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


def rate(work: Callable[[bytes], list[object]], corpus: list[bytes], seconds: float) -> float:
    """Messages per second over repeated passes of the corpus for about ``seconds``."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for raw in corpus:
            work(raw)
        done += len(corpus)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def run(rounds: int, seconds: float) -> dict[str, object]:
    corpus = load_corpus()
    for raw in corpus:  # warm caches, and check the splitters read what Switchboard reads
        expected = [value or None for value in switchboard(raw)]
        python_hl7(raw)
        for work in (eager_split, fields_split):
            assert [value or None for value in work(raw)] == expected, work.__name__
    samples: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(rounds):
        for name, work in CONTENDERS.items():
            samples[name].append(rate(work, corpus, seconds))
    ratios = {
        other: statistics.median(
            s / o for s, o in zip(samples["switchboard"], samples[other], strict=True)
        )
        for other in CONTENDERS
        if other != "switchboard"
    }
    return {
        "benchmark": "parse + 5 field reads per message",
        "messages_in_corpus": len(corpus),
        "rounds": rounds,
        "seconds_per_sample": seconds,
        "python": platform.python_version(),
        "median_msgs_per_s": {name: statistics.median(v) for name, v in samples.items()},
        "samples_msgs_per_s": samples,
        "median_ratio_switchboard_over": ratios,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.rounds, args.seconds)
    medians = result["median_msgs_per_s"]
    ratios = result["median_ratio_switchboard_over"]
    assert isinstance(medians, dict) and isinstance(ratios, dict)
    print(f"{result['benchmark']}, {result['messages_in_corpus']} messages, "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s each")
    for name, value in medians.items():
        ratio = "" if name == "switchboard" else f"   switchboard is {ratios[name]:.1f}x"
        print(f"  {name:12s} {value:12,.0f} msgs/s (median){ratio}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
