"""``python -m bench.chaos``: the chaos run on SQLite and on PostgreSQL (a private
cluster). 20,000 messages for 200 patients over 4 MLLP connections, resent until AA;
at load milestones drawn from a seeded generator, ``switchboard serve`` SIGKILLed 20
times, on PostgreSQL two ``switchboard engine`` processes SIGKILLed in turn and the
database stopped for 30 s, the destination down for 60 s (its policy outlasts it),
a round of refusals (409) that dead-letters and an operator retrying through the CLI,
and the destination answering 2 s late for a stretch. Prints a table per store, writes
JSON, and exits 1 unless every target is met: 0 lost, 0 out of order, at most 1%
redelivered (each repeat explained by a fault), every fault injected.

    python -m bench.chaos [--store sqlite|postgres] [--seed N] [--messages 20000]
                          [--patients 200] [--kills 20] [--engine-kills 4]
                          [--destination-down 60] [--database-down 30]
                          [--slow-seconds 2] [--slow-requests 20]
                          [--keep DIR] [--json bench/results/chaos.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.chaos.run import POSTGRES, SQLITE, run_store
from bench.chaos.settings import Settings
from tests.waiting import wait_until

ROWS = (("ACKed", "acked"), ("lost", "lost"), ("out of order", "out_of_order"),
        ("redelivered", "redelivered"), ("  unexplained by a fault", "redelivered_unexplained"),
        ("dead-lettered", "dead_lettered"), ("  retried by the operator", "retried"),
        ("serve kills", ("kills", "serve")), ("engine kills", ("kills", "engine")),
        ("  with a delivery in flight", "kills_with_delivery_in_flight"),
        ("wall time (s)", "wall_seconds"))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    settings = Settings(messages=args.messages, patients=args.patients, kills=args.kills,
                        engine_kills=args.engine_kills,
                        destination_down=args.destination_down,
                        database_down=args.database_down, slow_seconds=args.slow_seconds,
                        slow_requests=args.slow_requests, seed=seed)
    command = "python -m bench.chaos " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"chaos: seed {seed} (repeat with --seed {seed})", flush=True)
    stores = [args.store] if args.store else [SQLITE, POSTGRES]
    reports: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="switchboard-chaos-") as temporary:
        folder = args.keep or Path(temporary)
        for store in stores:
            print(f"chaos: {store} ...", flush=True)
            reports[store] = run_store(store, settings, folder / store, wait_until)
    _print_table(reports)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": command.strip(), "seed": seed,
                                         "settings": asdict(settings), "stores": reports},
                                        indent=2) + "\n", encoding="utf-8")
    missed = {store: report["missed"] for store, report in reports.items() if report["missed"]}
    for store, misses in missed.items():
        for miss in misses:
            print(f"chaos: {store}: target missed: {miss}", file=sys.stderr)
    return 1 if missed else 0


def _print_table(reports: dict[str, Any]) -> None:
    stores = list(reports)
    width = max(len(label) for label, _ in ROWS)
    print(f"{'':{width}}  " + "  ".join(f"{store:>10}" for store in stores))
    for label, key in ROWS:
        cells = []
        for store in stores:
            value = (reports[store][key[0]][key[1]] if isinstance(key, tuple)
                     else reports[store][key])
            cells.append(f"{value:>10}")
        print(f"{label:{width}}  " + "  ".join(cells))
    for store in stores:
        print(f"{store}: target {'met' if not reports[store]['missed'] else 'MISSED'}")


def _parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=[SQLITE, POSTGRES], help="default: both")
    parser.add_argument("--seed", type=int, help="repeat a run (default: a new one)")
    parser.add_argument("--messages", type=int, default=defaults.messages)
    parser.add_argument("--patients", type=int, default=defaults.patients)
    parser.add_argument("--kills", type=int, default=defaults.kills,
                        help="SIGKILLs of switchboard serve")
    parser.add_argument("--engine-kills", type=int, default=defaults.engine_kills,
                        help="SIGKILLs of the two engine processes, in turn (PostgreSQL)")
    parser.add_argument("--destination-down", type=float, default=defaults.destination_down,
                        metavar="SECONDS", help="the first destination outage, at least")
    parser.add_argument("--database-down", type=float, default=defaults.database_down,
                        metavar="SECONDS", help="the PostgreSQL outage, at least")
    parser.add_argument("--slow-seconds", type=float, default=defaults.slow_seconds)
    parser.add_argument("--slow-requests", type=int, default=defaults.slow_requests)
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep each store's sink record, ACKs, faults and logs here")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="write the reports here, e.g. bench/results/chaos.json")
    return parser


if __name__ == "__main__":
    sys.exit(main())
