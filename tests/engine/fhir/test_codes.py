"""The code tables read both ways, and HL7 coding system names as FHIR systems."""

from __future__ import annotations

import pytest

from engine.fhir import codes


@pytest.mark.parametrize("name, uri", [
    ("LN", "http://loinc.org"),
    ("SCT", "http://snomed.info/sct"),
    ("HL70005", "http://terminology.hl7.org/CodeSystem/v2-0005"),
    ("HL70296", "http://terminology.hl7.org/CodeSystem/v2-0296"),
    ("http://loinc.org", "http://loinc.org"),
    ("urn:oid:2.16.840.1.113883.6.1", "urn:oid:2.16.840.1.113883.6.1"),
    # local names are not URIs: sent without a system rather than with a false one
    ("L", None),
    ("XYZ", None),
    ("POST 12H CFST:MCNC:PT:SER/PLAS:QN", None),
    ("HL7000", None),
])
def test_coding_systems(name, uri):
    assert codes.system_uri(name) == uri


def test_reverse_keeps_the_first_code_for_a_shared_value():
    assert codes.reverse({"B": "work", "O": "work", "H": "home"}) == {"work": "B", "home": "H"}
    assert codes.reverse(codes.ADDRESS_KINDS)[("use", "work")] == "B"


@pytest.mark.parametrize("table", [
    codes.ORDER_PRIORITIES, codes.DOCUMENT_AVAILABILITY,
    codes.ENCOUNTER_ROLES,
])
def test_tables_without_shared_values_read_back_exactly(table):
    assert codes.reverse(codes.reverse(table)) == table


def test_every_status_fallback_is_in_its_value_set():
    for allowed, fallback in codes.STATUSES.values():
        assert fallback is None or fallback in allowed
