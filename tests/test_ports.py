"""Ports for servers a test starts later: outside the range the kernel hands to
outgoing connections, and never the same one twice in a run."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.ports import free_port


def ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_a_free_port_is_outside_the_range_of_outgoing_connections():
    """Regression: free_port bound port 0, which takes a port from the ephemeral range;
    before the engine bound it, an outgoing connection (a PostgreSQL client, say) could
    take it, and an engine of the scale-out test failed with 'address already in use'."""
    low, high = ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert [port for port in ports if low <= port <= high] == []


def test_a_free_port_is_handed_out_once_and_can_be_bound():
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports[-1]))
