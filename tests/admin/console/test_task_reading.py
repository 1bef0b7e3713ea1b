"""How a task's payload reads on its page: every shape of a result's value
(engine.model.observation_value), flags in words, names as a chart heads them, and
the countdown text the inbox starts with before console.js takes over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from admin.console.task_reading import flag_words, is_abnormal, label, person_name, value_text
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
