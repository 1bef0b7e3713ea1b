"""The full schemathesis run against the REST API's OpenAPI document: every check,
positive and negative data, every phase (examples, coverage, fuzzing, stateful links),
schemathesis's own number of examples, with the API token of each role and with none,
each caller on a store of its own seeded as a day's work leaves it
(tests/api_conformance.py). The suite runs a bounded version
(tests/admin/test_api_conformance.py).

    python -m bench.api_conformance [--json bench/results/api_conformance.json]
        [--max-examples N] [--callers olive,adam,nobody]

Prints, per caller, the operations tested, the requests made and the failures found,
and exits non-zero if any caller had one."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.api_conformance import live_web, run_schemathesis, seed
from tests.queue_rows import PEOPLE

CALLERS = [*PEOPLE, "nobody"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="examples per operation (default: schemathesis's own)")
    parser.add_argument("--callers", default=",".join(CALLERS),
                        help="comma-separated users of tests.queue_rows.PEOPLE, or nobody")
    args = parser.parse_args(argv)
    # The audit trail's key and anchors, as the tests set them: never ./instance.
    work = Path(tempfile.mkdtemp(prefix="switchboard-api-conformance-"))
    os.environ.setdefault("SWITCHBOARD_AUDIT_KEY", "api-conformance-audit-key-not-a-secret")
    os.environ.setdefault("SWITCHBOARD_SECRET_KEY", "api-conformance-console-key-not-a-secret")
    os.environ["SWITCHBOARD_AUDIT_ANCHOR_DIR"] = str(work / "anchors")
    figures = []
    for who in args.callers.split(","):
        folder = work / who
        folder.mkdir(parents=True)
        url = f"sqlite:///{folder / 'switchboard.db'}"
        tokens = seed(url)
        started = time.perf_counter()
        with live_web(url) as base:
            outcome = run_schemathesis(base, who, tokens.get(who), folder / "run",
                                       args.max_examples)
        figure = {"caller": who, "operations": outcome.operations,
                  "requests": outcome.requests, "failures": len(outcome.failures),
                  "exit_code": outcome.code,
                  "seconds": round(time.perf_counter() - started, 1)}
        figures.append(figure)
        print(json.dumps(figure), flush=True)
        for failure in sorted(set(outcome.failures)):
            print("   ", failure, flush=True)
        if outcome.code not in (0, 1):  # 1: failures found; anything else: it broke
            print(outcome.output[-4000:], file=sys.stderr)
    total = {"callers": len(figures), "requests": sum(f["requests"] for f in figures),
             "failures": sum(f["failures"] for f in figures),
             "operations": max((f["operations"] for f in figures), default=0)}
    print(json.dumps(total))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"callers": figures, "total": total}, indent=2))
    return 0 if total["failures"] == 0 and all(f["exit_code"] == 0 for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
