"""A bound on glibc's malloc arenas in the long-running services.

glibc gives a thread that allocates while another holds the lock an arena of its own,
up to eight per core, and memory freed in one arena is not reused by another. A service
whose threads come and go (HTTP requests, delivery chains, the MLLP listener's readers)
leaves its heap fragmented across them, and its resident size creeps up for as long as
it runs without any object being kept: ``bench/fuzz`` saw ``serve`` and its workers
grow about 3 MiB per 100,000 inputs that way. With two arenas that fell below 2 MiB, at
no cost in throughput the fuzz run could measure: the GIL lets one thread at a time
allocate anyway."""

from __future__ import annotations

import ctypes
import os
import platform

ARENAS = 2
_M_ARENA_MAX = -8  # malloc.h


def bound_malloc_arenas() -> bool:
    """At most ``ARENAS`` arenas in this process and, through the environment glibc
    reads as it starts, in every process it spawns (the pipeline workers). Call it
    before any thread starts. An operator's own ``MALLOC_ARENA_MAX`` is left as it is:
    glibc has read it already. True when the bound was set here."""
    if "MALLOC_ARENA_MAX" in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(ARENAS)
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_ARENA_MAX, ARENAS))


def trim_heap() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``), after
    a one-off burst such as compiling the canonical schema's validator (about 95 MiB at
    its peak, 20 MiB kept): without it the process keeps the peak as its resident size
    for as long as it runs. True when glibc released some memory."""
    if platform.libc_ver()[0] != "glibc":
        return False
    return bool(ctypes.CDLL(None).malloc_trim(0))
