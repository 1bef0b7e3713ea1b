"""The REST API matches its own OpenAPI document: schemathesis, with every check,
positive and negative data and its stateful links, against a live web process over a
store a day's work has filled, with the API token of each role and with none, finds
nothing. A bounded run; bench/api_conformance.py runs it unbounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api_conformance import live_web, run_schemathesis, seed
from tests.queue_rows import PEOPLE

# Examples per operation and phase: the suite's budget for these runs is 150 s in all.
MAX_EXAMPLES = 2
# Who calls: every role's user (tests.queue_rows.PEOPLE), then nobody.
CALLERS = [*PEOPLE, None]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[str, dict[str, str], Path]:
    folder = tmp_path_factory.mktemp("conformance")
    url = f"sqlite:///{folder / 'switchboard.db'}"
    tokens = seed(url)
    with live_web(url) as base:
        yield base, tokens, folder


@pytest.mark.parametrize("who", CALLERS, ids=[str(who or "nobody") for who in CALLERS])
def test_schemathesis_finds_nothing(served, who):
    base, tokens, folder = served
    outcome = run_schemathesis(base, who or "nobody", tokens[who] if who else None,
                               folder / (who or "nobody"), MAX_EXAMPLES)
    assert outcome.requests > 0 and outcome.operations >= 40, outcome.output[-3000:]
    assert outcome.failures == [], "\n".join(outcome.failures) + outcome.output[-6000:]
    assert outcome.code == 0, outcome.output[-6000:]
