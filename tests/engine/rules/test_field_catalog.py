"""The rule studio's field picker: every canonical path with the schema's words for it."""

from __future__ import annotations

from engine.model.schemas import schema
from engine.rules.field_catalog import canonical_fields, words_for


def test_a_field_shows_its_own_description() -> None:
    flags = schema("canonical")["properties"]["results"]["items"]["properties"]["abnormal_flags"]
    assert words_for("field", "results[*].abnormal_flags[*]") == flags["description"]
    assert words_for("field", "message.type").startswith("The message type such as ADT")


def test_a_part_of_a_shared_type_says_whose_it_is() -> None:
    words = words_for("field", "encounter.attending.family")
    assert words.startswith("Family name (XCN-2")
    assert words.endswith("Part of: " + words_for("field", "encounter.attending"))
    assert "PV1-7 (Attending Doctor)" in words
    assert "PID-10 (Race)" in words_for("field", "patient.race.code")


def test_a_part_of_a_type_used_once_keeps_its_own_words() -> None:
    assert words_for("field", "results[*].value.number") == (
        "The number of an NM, or of an SN with one number, from OBX-5; "
        "FHIR valueQuantity.value.")


def test_no_field_falls_back_to_its_key_in_words() -> None:
    assert [f.path for f in canonical_fields() if ", in: " in f.words] == []
