"""The indexed HL7 paths: configuration checked when it is read, and the keys of the
values a message holds at each path."""

from __future__ import annotations

import pytest

from engine.errors import PathError
from engine.hl7v2 import parse
from engine.indexed_paths import DEFAULT, SETTING, IndexedPaths
from engine.lookup_keys import lookup_key

RESULT = parse("MSH|^~\\&|LIS|LABFAC^1.2.3^ISO|SB|RIVERSIDE|20261124101500||ORU^R01|C1|P|2.5.1\r"
               "PID|1||MRN1^^^RIVERSIDE^MR~ALT9^^^OTHER\r"
               "OBX|1|NM|2345-7^Glucose^LN||5|mmol/L\r"
               "OBX|2|NM|718-7^Hemoglobin^LN||13|g/dL\r"
               "OBX|3|NM|2345-7^Glucose^LN||6|mmol/L\r"
               "OBX|4|ST|^^LN||x\r")


@pytest.mark.parametrize(("setting", "names"), [
    (None, DEFAULT),
    ("OBX-3.1, PV1-3.1,MSH-4", DEFAULT),
    ("obx[*]-3.1 OBX-3.1  PID-3[*].1", ("OBX-3.1", "PID-3[*].1")),
    ("OBX[2]-3.1", ("OBX[2]-3.1",)),
    ("", ()),
])
def test_the_setting_names_the_paths(setting, names):
    environ = {} if setting is None else {SETTING: setting}
    assert IndexedPaths.configured(environ).names == names


@pytest.mark.parametrize(("setting", "error"), [
    ("OBX-3.1,OBX-", r"SWITCHBOARD_INDEXED_PATHS: 'OBX-' is not an HL7 path\. Write "),
    ("PID", r"SWITCHBOARD_INDEXED_PATHS: 'PID' names a segment, not a field\. Index a field"),
    ("OBX-0", r"HL7 positions count from 1"),
    ("OBX[99999999999999999999999999]-3[99999999999999999999999999].1.1",
     r"too long for an indexed path\. Write it in at most 59 characters"),
])
def test_a_bad_path_in_the_setting_is_refused_with_its_reason(setting, error):
    with pytest.raises(PathError, match=error):
        IndexedPaths.configured({SETTING: setting})


def test_every_occurrence_counts_and_a_value_held_twice_is_one_key():
    keys = IndexedPaths(["OBX-3.1", "MSH-4", "PID-3.1", "PV1-3.1"]).keys(RESULT)
    assert keys == [
        ("path:OBX-3.1", lookup_key("path:OBX-3.1", "2345-7")),
        ("path:OBX-3.1", lookup_key("path:OBX-3.1", "718-7")),
        ("path:MSH-4", lookup_key("path:MSH-4", "LABFAC")),
        ("path:PID-3.1", lookup_key("path:PID-3.1", "MRN1")),
        ("path:PID-3.1", lookup_key("path:PID-3.1", "ALT9")),  # every repetition
    ]


def test_a_named_occurrence_is_that_one_only():
    assert IndexedPaths(["OBX[2]-3.1"]).keys(RESULT) == [
        ("path:OBX[2]-3.1", lookup_key("path:OBX[2]-3.1", "718-7"))]


@pytest.mark.parametrize(("path", "kind"), [
    ("OBX-3.1", "path:OBX-3.1"), ("OBX[*]-3.1", "path:OBX-3.1"), ("obx-3.1", "path:OBX-3.1"),
    ("OBX-3", None), ("OBX[1]-3.1", None), ("not a path", None), ("PV1-3.1", "path:PV1-3.1"),
])
def test_a_search_names_an_indexed_path_any_way_that_means_the_same(path, kind):
    assert IndexedPaths().kind_of(path) == kind


def test_lookup_keys_differ_by_kind_and_hold_no_value():
    assert lookup_key("control_id", "123") != lookup_key("path:OBX-3.1", "123")
    assert lookup_key("control_id", "123") == lookup_key("control_id", "123")
    assert len(lookup_key("patient", "RIVERSIDE|MRN1")) == 32
    assert "MRN1" not in lookup_key("patient", "RIVERSIDE|MRN1")
