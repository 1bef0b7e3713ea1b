"""Inbound MLLP endpoints carry the listener's allow-list, frame limit and idle timeout."""

from __future__ import annotations

import pytest

from engine.rules.catalog_entry import CatalogError, Connection

BASE = {
    "id": "ehr-feed", "name": "EHR feed", "direction": "inbound", "transport": "mllp",
    "format": "hl7v2",
}


def test_listener_settings_are_read():
    connection = Connection.from_dict({**BASE, "endpoint": {
        "host": "127.0.0.1", "port": 2575, "allowed_peers": ["10.0.0.0/8", "127.0.0.1"],
        "max_frame_bytes": 1048576, "idle_timeout": "5m",
    }})
    endpoint = connection.endpoint
    assert endpoint.allowed_peers == ("10.0.0.0/8", "127.0.0.1")
    assert (endpoint.max_frame_bytes, endpoint.idle_timeout) == (1048576, 300.0)


def test_defaults_leave_them_to_the_listener():
    endpoint = Connection.from_dict({**BASE, "endpoint": {"host": "h", "port": 1}}).endpoint
    assert (endpoint.allowed_peers, endpoint.max_frame_bytes, endpoint.idle_timeout) == (
        (), None, None)


def test_bad_frame_limit():
    with pytest.raises(CatalogError, match="max_frame_bytes: 'big' is not a whole number"):
        Connection.from_dict({**BASE, "endpoint": {"host": "h", "port": 1,
                                                   "max_frame_bytes": "big"}})
