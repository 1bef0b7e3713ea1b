"""The REST API matches its own OpenAPI document: schemathesis, with every check and
positive and negative data, against a live web process over a store a day's work has
filled, finds nothing, with the API token of each role and with none. A bounded run:
the coverage phase (every operation's boundary and missing values, undeclared methods:
some 2,250 requests) once, as an admin, who may call every operation; the examples,
fuzzing and stateful (OpenAPI links) phases as every caller. bench/api_conformance.py
runs every phase for every caller, unbounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_conformance import Outcome, live_web, run_schemathesis, seed
from tests.queue_rows import PEOPLE

# Examples per operation in the fuzzing phase: the suite's budget for all of this
# module is 150 s on the 2-core machine.
MAX_EXAMPLES = 1
# Who calls: every role's user (tests.queue_rows.PEOPLE), then nobody.
CALLERS = [*PEOPLE, None]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, dict[str, str], Path]]:
    folder = tmp_path_factory.mktemp("conformance")
    url = f"sqlite:///{folder / 'switchboard.db'}"
    tokens = seed(url)
    with live_web(url) as base:
        yield base, tokens, folder


def test_the_coverage_phase_finds_nothing(served):
    base, tokens, folder = served
    outcome = run_schemathesis(base, "adam", tokens["adam"], folder / "coverage",
                               MAX_EXAMPLES, phases=("coverage",))
    assert outcome.requests > 1000
    _found_nothing(outcome)


@pytest.mark.parametrize("who", CALLERS, ids=[who or "nobody" for who in CALLERS])
def test_examples_fuzzing_and_links_find_nothing(served, who):
    base, tokens, folder = served
    outcome = run_schemathesis(base, who or "nobody", tokens[who] if who else None,
                               folder / (who or "nobody"), MAX_EXAMPLES,
                               phases=("examples", "fuzzing", "stateful"))
    _found_nothing(outcome)


def _found_nothing(outcome: Outcome) -> None:
    # Every operation was called (the document has 43, the health probes included).
    assert outcome.operations >= 40, outcome.output[-3000:]
    assert outcome.failures == [], "\n".join(outcome.failures) + outcome.output[-6000:]
    assert outcome.code == 0, outcome.output[-6000:]
