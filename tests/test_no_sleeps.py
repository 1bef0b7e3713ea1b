"""Tests wait for events, not time: ``time.sleep`` and ``asyncio.sleep`` appear in
tests/ only in the wait helper and the fault-injection helper, which own the only
deliberate pauses (a poll between checks, a destination that answers late)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ALLOWED = {TESTS / "waiting.py", TESTS / "faults.py"}
SLEEPS = {("time", "sleep"), ("asyncio", "sleep")}


def sleeps_in(tree: ast.AST) -> list[str]:
    """Where ``tree`` names a sleep: ``time.sleep``, ``asyncio.sleep``, either under a
    module alias, or imported by name (``from time import sleep as nap``)."""
    modules: dict[str, str] = {}  # local name -> module, for ``import time as t``
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in {module for module, _ in SLEEPS}:
                    modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module, alias.name) in SLEEPS:
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and (modules.get(node.value.id), node.attr) in SLEEPS):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return sorted(found)


@pytest.mark.parametrize(("source", "found"), [
    ("import time\ntime.sleep(1)", ["line 2: time.sleep"]),
    ("import asyncio\nawait asyncio.sleep(1)", ["line 2: asyncio.sleep"]),
    ("import time as clock\nclock.sleep(1)", ["line 2: clock.sleep"]),
    ("from time import sleep\nsleep(1)", ["line 1: from time import sleep"]),
    ("from asyncio import sleep as nap", ["line 1: from asyncio import sleep"]),
    ("import time\npause = time.sleep", ["line 2: time.sleep"]),
    ("import time\ntime.monotonic()", []),
    ("import threading\nthreading.Event().wait(1)", []),
])
def test_the_check_finds_every_spelling_of_a_sleep(source, found):
    assert sleeps_in(ast.parse(source)) == found


def test_no_test_sleeps_outside_the_wait_and_fault_helpers():
    offenders = {
        str(path.relative_to(TESTS.parent)): found
        for path in sorted(TESTS.rglob("*.py"))
        if path not in ALLOWED and "node_modules" not in path.parts  # npm packages: not ours
        if (found := sleeps_in(ast.parse(path.read_text(), str(path))))}
    assert offenders == {}, (
        "wait for an event with tests.waiting, or inject a delay with tests.faults")
