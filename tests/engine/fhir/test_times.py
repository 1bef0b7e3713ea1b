"""Times between the canonical record and FHIR: precision and offset kept as far as
FHIR allows, never an offset made up."""

from __future__ import annotations

import pytest

from engine.fhir.times import canonical_time, fhir_date, fhir_datetime, fhir_instant


@pytest.mark.parametrize("canonical, date, datetime, instant", [
    ("1984", "1984", "1984", None),
    ("1984-03", "1984-03", "1984-03", None),
    ("1984-03-17", "1984-03-17", "1984-03-17", None),
    ("1988-08-18T11+02:15", "1988-08-18", "1988-08-18T11:00:00+02:15",
     "1988-08-18T11:00:00+02:15"),
    ("1988-08-18T11:26+02:15", "1988-08-18", "1988-08-18T11:26:00+02:15",
     "1988-08-18T11:26:00+02:15"),
    ("2021-08-17T15:19:43.4+02:00", "2021-08-17", "2021-08-17T15:19:43.4+02:00",
     "2021-08-17T15:19:43.4+02:00"),
    ("2011-01-03T14:34:28-08:00", "2011-01-03", "2011-01-03T14:34:28-08:00",
     "2011-01-03T14:34:28-08:00"),
    # no offset: FHIR needs one with a time, so only the date is sent
    ("2005-01-10T04:52:53", "2005-01-10", "2005-01-10", None),
    ("2002-02-15T09:30", "2002-02-15", "2002-02-15", None),
    ("not a time", None, None, None),
    (None, None, None, None),
    (20240502, None, None, None),
])
def test_canonical_times_to_fhir(canonical, date, datetime, instant):
    assert fhir_date(canonical) == date
    assert fhir_datetime(canonical) == datetime
    assert fhir_instant(canonical) == instant


@pytest.mark.parametrize("fhir, canonical", [
    ("1984", "1984"),
    ("1984-03-17", "1984-03-17"),
    ("2024-05-02T09:15:00Z", "2024-05-02T09:15:00+00:00"),
    ("2024-05-02T07:45:10.1234567Z", "2024-05-02T07:45:10.123456+00:00"),
    ("2024-05-02T08:01:12.5+02:00", "2024-05-02T08:01:12.5+02:00"),
    ("2024-06-11T09:30:00-07:00", "2024-06-11T09:30:00-07:00"),
    ("yesterday", None),
    (None, None),
])
def test_fhir_times_to_canonical(fhir, canonical):
    assert canonical_time(fhir) == canonical
