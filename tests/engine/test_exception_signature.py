"""Exception signatures: which failures count as the same problem."""

from __future__ import annotations

import re

import pytest

from engine.exception_signature import (
    KEY_LENGTH,
    is_key,
    like_pattern,
    signature_key,
    signature_of,
    summary_pattern,
)


@pytest.mark.parametrize(("summary", "connection", "pattern"), [
    ("delivery to clinic-north failed after 5 attempts: connection refused", "clinic-north",
     "delivery to clinic-north failed after # attempts: connection refused"),
    # The connection's own name keeps its digits.
    ("delivery to lab-2 failed after 12 attempts: timed out", "lab-2",
     "delivery to lab-2 failed after # attempts: timed out"),
    ("delivery to lab-2 failed after 12 attempts: timed out", None,
     "delivery to lab-# failed after # attempts: timed out"),
    ("message 3f2b8c1e-9d4a-4e5f-8a6b-0c1d2e3f4a5b was rejected", None,
     "message <id> was rejected"),
    ("content hash 9f86d081884c7d65 differs", None, "content hash <id> differs"),
    # Decimals, times and grouped numbers are one number.
    ("value 12.5 at 10:42:07 over 1,000", None, "value # at # over #"),
    ("control id MSG00042 seen twice", None, "control id MSG# seen twice"),
    # What names the problem stays: HL7 paths and HTTP statuses.
    ("PID-3.1 is empty: the patient cannot be identified", "ehr-adt-feed",
     "PID-3.1 is empty: the patient cannot be identified"),
    ("OBX[*]-5 missing in OBX[2]-5 of 7 results", None,
     "OBX[*]-5 missing in OBX[2]-5 of # results"),
    ("delivery failed: HTTP 503 after 3 attempts", None,
     "delivery failed: HTTP 503 after # attempts"),
    # A hex word without digits is a word, a digits-only run a number.
    ("deadbeefcafe and 123456789012", None, "deadbeefcafe and #"),
    ("no route row matched this message: it goes nowhere", None,
     "no route row matched this message: it goes nowhere"),
    ("", None, ""),
])
def test_a_summary_pattern_masks_what_varies(summary, connection, pattern):
    assert summary_pattern(summary, connection) == pattern


@pytest.mark.parametrize(("first", "second", "same"), [
    (("clinic-north", "transport_error", "delivery to clinic-north failed after 5 "
      "attempts: connection refused"),
     ("clinic-north", "transport_error", "delivery to clinic-north failed after 3 "
      "attempts: connection refused"), True),
    (("clinic-north", "transport_error", "failed after 5 attempts"),
     ("clinic-south", "transport_error", "failed after 5 attempts"), False),
    (("clinic-north", "transport_error", "failed after 5 attempts"),
     ("clinic-north", "rejected", "failed after 5 attempts"), False),
    (("ehr-adt-feed", "validation", "PID-3 is empty"),
     ("ehr-adt-feed", "validation", "PID-5 is empty"), False),
    ((None, "validation", "internal error 7"), (None, "validation", "internal error 9"), True),
    ((None, "validation", "x"), ("", "validation", "x"), False),
])
def test_items_share_a_signature_when_connection_class_and_pattern_agree(first, second,
                                                                         same):
    assert (signature_of(*first) == signature_of(*second)) is same
    assert (signature_of(*first).key == signature_of(*second).key) is same


def test_a_key_is_short_hex_and_the_same_every_time():
    key = signature_key("clinic-north", "transport_error", "failed after # attempts")
    assert key == signature_key("clinic-north", "transport_error", "failed after # attempts")
    assert len(key) == KEY_LENGTH and is_key(key)
    assert not is_key(key.upper()) and not is_key(key[:-1]) and not is_key("zz" * 8)


@pytest.mark.parametrize(("pattern", "like"), [
    ("failed after # attempts", "failed after % attempts"),
    ("message <id> was # times", "message % was % times"),
    ("100% of_it \\ here", "100\\% of\\_it \\\\ here"),
    ("", ""),
])
def test_a_like_pattern_escapes_literals_and_widens_masks(pattern, like):
    assert like_pattern(pattern) == like


def like_matches(like: str, text: str) -> bool:
    """SQL LIKE with ``\\`` as its escape, as a store reads it (case-sensitively)."""
    regex, chars = "", iter(like)
    for char in chars:
        if char == "\\":
            regex += re.escape(next(chars))
        else:
            regex += {"%": ".*", "_": "."}.get(char, re.escape(char))
    return re.fullmatch(regex, text, re.S) is not None


@pytest.mark.parametrize("summary", [
    "delivery to x failed after 5 attempts: 50% of_it \\ too",
    "message 3f2b8c1e-9d4a-4e5f-8a6b-0c1d2e3f4a5b at 10:42",
    "PID-3.1 is empty",
])
def test_every_summary_matches_the_like_pattern_of_its_own_pattern(summary):
    assert like_matches(like_pattern(summary_pattern(summary)), summary)
    assert not like_matches(like_pattern(summary_pattern(summary)), "!" + summary)
