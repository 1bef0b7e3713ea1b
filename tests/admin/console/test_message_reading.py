"""A route condition's evidence in words on a message's page: where the values were
read, the item of a scope included."""

from __future__ import annotations

import pytest

from admin.console.message_reading import evidence_words, seen_words
from engine.rules.conditions import Evidence


@pytest.mark.parametrize(("evidence", "words"), [
    (Evidence("field", "results[*].abnormal_flags[*]", "in", "any", ("HH", "LL"), ("HH",),
              True), "results[*].abnormal_flags[*] is one of HH, LL"),
    (Evidence("hl7", "OBX[*]-8", "eq", "all", "N", ("N", ""), False),
     "HL7 OBX[*]-8 is N (all values)"),
    (Evidence("field", "abnormal_flags[*]", "in", "any", ("HH", "LL"), ("LL",), True,
              scope="results[*]", item=2), "results[2].abnormal_flags[*] is one of HH, LL"),
    (Evidence("field", "code", "eq", "any", "2823-3", (), False, scope="results[*]"),
     "results[*].code is 2823-3"),
])
def test_evidence_says_where_the_values_were_read(evidence, words):
    assert evidence_words(evidence) == words


def test_a_scope_over_no_items_saw_nothing():
    evidence = Evidence("field", "code", "eq", "any", "2823-3", (), False, scope="results[*]")
    assert seen_words(evidence) == "nothing there"
