"""How a task's payload reads on its page: every shape of a result's value
(engine.model.observation_value), flags in words, names as a chart heads them, and
the countdown text the inbox starts with before console.js takes over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from admin.console.task_reading import (
    flag_words,
    in_reading_order,
    is_abnormal,
    is_person,
    label,
    person_name,
    person_text,
    range_text,
    value_text,
    when,
)
from admin.console.tasks import due_words


@pytest.mark.parametrize(("value", "text"), [
    ({"type": "NM", "number": 182}, "182"),
    ({"type": "SN", "number": 5, "comparator": "<"}, "< 5"),
    ({"type": "SN", "low": 10, "high": 20}, "10 to 20"),
    ({"type": "SN", "numerator": 1, "denominator": 128}, "1:128"),
    ({"type": "CWE", "code": {"code": "POS", "display": "Positive"}}, "Positive (POS)"),
    ({"type": "CWE", "code": {"code": "POS"}}, "POS"),
    ({"type": "ST", "text": "see note"}, "see note"),
    ({"type": "DTM", "datetime": "2026-11-24T10:15:00+00:00"}, "2026-11-24T10:15:00+00:00"),
    ({"type": "ED", "attachment": {"data_type": "PDF"}},
     "an attachment, kept in the original message"),
    (None, ""),
    ("7.2", "7.2"),
])
def test_a_value_reads_plainly(value, text):
    assert value_text(value) == text


@pytest.mark.parametrize(("flags", "abnormal"), [
    (["H"], True), (["LL"], True), (["N"], False), (["NEG"], False), ([], False),
    (["N", "A"], True), (None, False),
])
def test_which_results_are_abnormal(flags, abnormal):
    assert is_abnormal({"abnormal_flags": flags}) is abnormal


def test_flags_names_and_labels_in_words():
    assert flag_words("H") == "High (H)"
    assert flag_words("HH") == "Critically high (HH)"
    assert flag_words("ZZ") == "ZZ"
    assert person_name({"family": "EVERYWOMAN", "given": "EVE", "middle": "E"}) == \
        "EVERYWOMAN, EVE E"
    assert person_name({"given": "EVE", "prefix": "Dr", "suffix": "III"}) == "Dr EVE III"
    assert label("ordering_provider") == "Ordering provider"
    assert label("birth_date") == "Date of birth"


def test_the_countdown_before_the_script_takes_over():
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert due_words((now + timedelta(hours=1, minutes=5)).isoformat(), now) == "due in 1h 5m"
    assert due_words((now - timedelta(days=2, hours=3)).isoformat(), now) == \
        "overdue by 2d 3h"
    assert due_words((now + timedelta(seconds=90)).isoformat(), now) == "due in 1m"
    assert due_words(None, now) == "no due time"


@pytest.mark.parametrize(("sent", "text"), [
    ("70_105", "70–105"), ("3.5-5.1", "3.5–5.1"), (" 0 - 10 ", "0–10"), ("-5-5", "-5–5"),
    ("<200", "<200"), ("negative", "negative"), (None, ""),
])
def test_a_reference_range_reads_as_a_range(sent, text):
    assert range_text(sent) == text


def test_results_are_read_critical_first_then_abnormal_then_the_rest():
    sent = [{"code": "a"}, {"code": "b", "abnormal_flags": ["H"]},
            {"code": "c", "abnormal_flags": ["N"]}, {"code": "d", "abnormal_flags": ["LL"]},
            {"code": "e", "abnormal_flags": ["L"]}]
    assert [r["code"] for r in in_reading_order(sent)] == ["d", "b", "e", "a", "c"]


def test_a_doctor_reads_as_a_name():
    doctor = {"id": "1234", "family": "SMITH", "given": "JOHN", "prefix": "DR",
              "assigning_authority": None}
    assert is_person(doctor) and person_text(doctor) == "DR SMITH, JOHN (1234)"
    assert not is_person({"family": "SMITH", "placer_id": "1"})
    assert not is_person({"id": "1234"})


@pytest.mark.parametrize(("sent", "text"), [
    ("2002-02-15T07:30:00+06:00", "2002-02-15 07:30, UTC+06:00"),
    ("2026-12-07T05:30:00+00:00", "2026-12-07 05:30 UTC"),
    ("2026-12-07T05:30:00", "2026-12-07 05:30"),
    ("2026-12-07", None), ("845439", None), (None, None),
])
def test_a_time_in_the_record_reads_without_its_t(sent, text):
    assert when(sent) == text
