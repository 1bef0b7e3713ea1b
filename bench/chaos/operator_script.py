"""The operator of the chaos run, through the real command line: an operator user is
added with ``switchboard users add``, and the dead letters to the sink are listed with
``switchboard exceptions list`` and sent again with ``switchboard exceptions retry``,
as a person clearing the exception queue after the destination is fixed would."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.delivery_config import SINK

OPERATOR = "chaos-operator"


def switchboard(*args: str) -> str:
    """Run ``switchboard ARGS``; its standard output, or an error with its words."""
    done = subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"switchboard {' '.join(args[:2])} exited {done.returncode}: "
                           f"{done.stderr.strip()}")
    return done.stdout


def add_operator(database_url: str) -> None:
    switchboard("users", "add", OPERATOR, "--role", "operator", "--database", database_url)


def retry_dead_letters(database_url: str) -> int:
    """Retry the open dead letters to the sink (the first 200 listed); how many."""
    listing = switchboard("exceptions", "list", "--status", "open", "--connection", SINK,
                          "--per-page", "200", "--json", "--as", OPERATOR,
                          "--database", database_url)
    items = [json.loads(line) for line in listing.splitlines() if line.strip()]
    for item in items:
        switchboard("exceptions", "retry", str(item["id"]), "--as", OPERATOR,
                    "--database", database_url)
    return len(items)
