from __future__ import annotations

import pytest

from engine.model.hl7_time import TimeFormatError, hl7_to_iso


@pytest.mark.parametrize(
    "value, iso",
    [
        ("2024", "2024"),
        ("202401", "2024-01"),
        ("20240102", "2024-01-02"),
        ("2024010203", "2024-01-02T03"),
        ("202401020304", "2024-01-02T03:04"),
        ("20240102030405", "2024-01-02T03:04:05"),
        ("20240102030405.1234", "2024-01-02T03:04:05.1234"),
        ("20240102030405+0100", "2024-01-02T03:04:05+01:00"),
        ("202401020304-0530", "2024-01-02T03:04-05:30"),
        ("20240102+0100", "2024-01-02"),  # an offset on a bare date means nothing
        (" 20240229 ", "2024-02-29"),
    ],
)
def test_precision_and_offset_are_kept(value, iso):
    assert hl7_to_iso(value) == iso


def test_no_offset_is_never_turned_into_utc():
    assert hl7_to_iso("20240102030405") == "2024-01-02T03:04:05"
    assert "+" not in hl7_to_iso("20240102030405") and "Z" not in hl7_to_iso("20240102030405")


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("196203520", "is not an HL7 date/time"),
        ("20230229", "not a real date/time"),
        ("20241301", "not a real date/time"),
        ("2024010225", "not a real date/time"),
        ("20240102030405+1900", "not a real date/time"),
        ("2024010203.5", "is not an HL7 date/time"),
        ("yesterday", "is not an HL7 date/time"),
        ("", "is not an HL7 date/time"),
    ],
)
def test_bad_values(value, fragment):
    with pytest.raises(TimeFormatError, match=fragment):
        hl7_to_iso(value)
