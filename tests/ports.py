"""Ports for servers that a test or benchmark starts later, in another process or after
a restart. Binding port 0 would take one from the kernel's ephemeral range, which any
outgoing connection (a PostgreSQL client, an HTTP client) may take before the server
binds it; these come from below or above that range instead, each one once."""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

LOWEST = 10_000  # below: well-known ports and the usual services' defaults (2575, 5432)
_handed_out: set[int] = set()
_lock = threading.Lock()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing holds now, outside the ephemeral range, and
    never handed out before in this process."""
    with _lock:
        candidates = _candidates()
        start = random.randrange(len(candidates))  # apart from other runs on the machine
        for port in candidates[start:] + candidates[:start]:
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    raise RuntimeError("no free port outside the ephemeral range "
                       "(see /proc/sys/net/ipv4/ip_local_port_range)")


def _candidates() -> list[int]:
    low, high = _ephemeral_range()
    return [port for port in range(LOWEST, 65_536) if not low <= port <= high]


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except OSError:  # not Linux: the IANA range most systems use
        return 49_152, 65_535
    return int(low), int(high)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
