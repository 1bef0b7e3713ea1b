"""The services bound glibc's malloc arenas before their threads start, for themselves
and the processes they spawn, and leave an operator's own bound alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SPAWN = """
import multiprocessing, os, sys
from engine.malloc_arenas import bound_malloc_arenas
print(bound_malloc_arenas())
with multiprocessing.get_context("spawn").Pool(1) as pool:
    print(pool.apply(os.getenv, ("MALLOC_ARENA_MAX",)))
"""


def run(environment: dict[str, str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SPAWN], env=environment, check=True,
                          capture_output=True, text=True, timeout=60)
    return done.stdout.split()


def test_the_bound_is_set_here_and_in_every_spawned_process():
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert run(environment) == ["True", "2"]


@pytest.mark.parametrize("given", ["1", "8"])
def test_an_operators_own_bound_is_left_as_it_is(given):
    assert run({**os.environ, "MALLOC_ARENA_MAX": given}) == ["False", given]


TRIM = """
from engine.malloc_arenas import trim_heap
from engine.model.schemas import fast_check
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
before = resident()
fast_check("canonical")  # compiles the canonical schema's validator, then trims
print(resident() - before)
"""


def test_compiling_the_canonical_check_keeps_no_burst_of_memory():
    """The compile's peak (about 95 MiB) is given back; what stays is the validator."""
    done = subprocess.run([sys.executable, "-c", TRIM], check=True, capture_output=True,
                          text=True, timeout=120)
    assert int(done.stdout) < 40 * 2**20
