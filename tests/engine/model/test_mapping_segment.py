"""``{segment: ...}``: where a segment is in the message, so items of two lists (a
result and its order, a specimen and its report) can name each other."""

from __future__ import annotations

import pytest

from engine.hl7v2 import parse
from engine.model.mapping import Mapper, MappingError

MESSAGE = parse("\r".join([
    "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5", "OBR|1|P1", "OBX|1|ST|X||a",
    "OBR|2|P2", "OBX|1|ST|Y||b", "OBX|2|ST|Z||c"]).encode())


def convert(fields: dict) -> dict:
    return Mapper([{"id": "t", "fields": fields}], {}).convert(MESSAGE).record


def test_an_item_names_its_parent_its_child_and_itself():
    record = convert({
        "results": {"each": "OBX[*]", "parent": "OBR",
                    "fields": {"code": "-3", "order_segment": {"segment": "^"}}},
        "orders": {"each": "OBR[*]", "child": "OBX",
                   "fields": {"segment": {"segment": ""}, "first": {"segment": ">"}}}})
    assert [(r["code"], r["order_segment"]) for r in record["results"]] == [
        ("X", "OBR[1]"), ("Y", "OBR[2]"), ("Z", "OBR[2]")]
    assert record["orders"] == [{"segment": "OBR[1]", "first": "OBX[1]"},
                                {"segment": "OBR[2]", "first": "OBX[2]"}]


def test_a_field_iteration_has_no_segment_and_an_item_without_a_parent_none():
    record = convert({"orders": {"each": "OBR-2[*]", "fields": {"at": {"segment": ""},
                                                                "id": ".1"}},
                      "results": {"each": "OBX[*]", "parent": "ORC",
                                  "fields": {"code": "-3", "at": {"segment": "^"}}}})
    assert record["orders"] == [{"id": "P1"}]  # the first OBR's OBR-2
    assert [r.get("at") for r in record["results"]] == [None, None, None]


def test_segment_names_a_segment_not_a_field():
    with pytest.raises(MappingError, match="segment takes"):
        convert({"results": {"each": "OBX[*]", "fields": {"at": {"segment": "^-2"}}}})
