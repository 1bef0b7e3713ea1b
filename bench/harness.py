"""What every benchmark does the same way: contenders take turns within every round, so
the machine's noise hits them alike; the report gives the median messages per second and
the median of the per-round ratios, printed and optionally saved as JSON.

A benchmark module supplies ``run(rounds, seconds) -> result`` and a ``report`` that
prints the result; :func:`command_line` parses ``--rounds``, ``--seconds`` and ``--json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

_Input = TypeVar("_Input")

Samples = dict[str, list[float]]
"""Messages per second of each contender, one sample per round."""


def rate(work: Callable[[_Input], object], inputs: Sequence[_Input], seconds: float) -> float:
    """Messages per second over repeated passes of ``inputs`` for about ``seconds``."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for item in inputs:
            work(item)
        done += len(inputs)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def interleaved_rounds(
    contenders: Mapping[str, Callable[[_Input], object]], inputs: Sequence[_Input],
    rounds: int, seconds: float,
) -> Samples:
    """A sample of every contender in every round, each round running them in turn."""
    samples: Samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, work in contenders.items():
            samples[name].append(rate(work, inputs, seconds))
    return samples


def median_ratio(samples: Samples, faster: str, slower: str) -> float:
    """The median over rounds of ``faster``'s rate divided by ``slower``'s in that round."""
    return statistics.median(
        f / s for f, s in zip(samples[faster], samples[slower], strict=True)
    )


def timing(rounds: int, seconds: float, samples: Samples) -> dict[str, object]:
    """The result fields every benchmark reports, in the order they are written."""
    return {
        "rounds": rounds,
        "seconds_per_sample": seconds,
        "python": platform.python_version(),
        "median_msgs_per_s": {name: statistics.median(v) for name, v in samples.items()},
        "samples_msgs_per_s": samples,
    }


def describe_rounds(rounds: int, seconds: float) -> str:
    return f"{rounds} interleaved rounds of {seconds:g} s each"


def print_medians(medians: Mapping[str, float], width: int,
                  suffix: Callable[[str], str] = lambda name: "") -> None:
    """One line per contender; ``suffix`` adds, say, a ratio after a contender's line."""
    for name, value in medians.items():
        print(f"  {name:{width}s} {value:12,.0f} msgs/s (median){suffix(name)}")


def command_line(
    description: str,
    run: Callable[[int, float], dict[str, object]],
    report: Callable[[dict[str, object], int, float], None],
    argv: list[str] | None = None,
) -> int:
    """Parse the options, run, print the report, then save the result if asked to."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.rounds, args.seconds)
    report(result, args.rounds, args.seconds)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0
