"""compact: FHIR JSON has no empty elements; zero and false are values, not empties."""

from __future__ import annotations

import pytest

from engine.fhir.elements import compact


@pytest.mark.parametrize("values, expected", [
    ({"a": None, "b": "", "c": [], "d": {}}, {}),
    ({"a": 0, "b": 0.0, "c": False, "d": "x"}, {"a": 0, "b": 0.0, "c": False, "d": "x"}),
    ({"a": [None, "", {}, [], 0, False, "y"]}, {"a": [0, False, "y"]}),
    ({"a": [None, "", {}]}, {}),
    ({"a": [[None]], "b": {"c": None}}, {"a": [[None]], "b": {"c": None}}),
    ({"a": (), "b": b""}, {"a": (), "b": b""}),
])
def test_compact_drops_empty_values_and_list_items(values, expected):
    found = compact(values)
    assert found == expected
    assert [type(v) for v in found.values()] == [type(v) for v in expected.values()]
