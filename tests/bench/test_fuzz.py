"""bench/fuzz in CI: the same harness as the million-input benchmark, with 2,000
inputs, against a real ``switchboard serve`` on SQLite; every invariant must hold."""

from __future__ import annotations

from pathlib import Path

from bench.fuzz.run import Options, run


def test_two_thousand_fuzzed_inputs_break_no_invariant(tmp_path: Path) -> None:
    # The harness gives every input 5 s to be answered (or its connection closed with
    # a reason Switchboard counts): a hang detector applied input by input, not an
    # assertion on how long this test takes. Half the inputs warm the server up
    # before its memory is measured.
    result = run(Options(inputs=2_000, seed=17, warm_up=1_000, quiet=True,
                         json_path=tmp_path / "fuzz.json", findings=tmp_path / "findings"))

    broken = {name: check for name, check in result["invariants"].items() if not check["held"]}
    assert not broken, (broken, result["findings"])
    assert result["inputs"] == 2_000
    assert result["failures"] == {}
