"""A data scope in words: grouped by the record's parts in its order, each field in
plain words, and marked where it lets a direct identifier of the patient through."""

from __future__ import annotations

import pytest

from engine.rules.scope_wording import WHOLE_AREA, ScopeArea, ScopeField, scope_in_words, scope_line


def test_fields_are_grouped_by_area_in_the_records_order() -> None:
    scope = ["results[*].value.number", "patient.birth_date", "message", "patient.gender",
             "encounter.location.facility"]
    assert scope_in_words(scope) == [
        ScopeArea("Message envelope", (ScopeField(WHOLE_AREA, "message", False),)),
        ScopeArea("Patient", (ScopeField("birth date", "patient.birth_date", True),
                              ScopeField("gender", "patient.gender", False))),
        ScopeArea("Visit", (ScopeField("location › facility", "encounter.location.facility",
                                       False),)),
        ScopeArea("Results", (ScopeField("value › number", "results[*].value.number",
                                         False),)),
    ]


@pytest.mark.parametrize(("scope", "line"), [
    ([], ""),
    (["patient.identifiers", "patient.names[*].family", "orders"],
     "Patient: identifiers, names › family; Orders: all fields"),
    (["merge", "task_outcome.decided_at"],
     "Merge (former identity): all fields; Task outcome: decided at"),
])
def test_a_scope_in_one_line(scope: list[str], line: str) -> None:
    assert scope_line(scope) == line


@pytest.mark.parametrize(("path", "identifies"), [
    ("patient", True), ("patient.names[*].use", False), ("patient.addresses[*].state", False),
    ("patient.identifiers[*].value", True), ("encounter.visit_number", True),
    ("encounter", True), ("results", False), ("merge.prior_identifiers", True),
])
def test_a_field_that_lets_an_identifier_through_is_marked(path: str, identifies: bool) -> None:
    [area] = scope_in_words([path])
    assert area.fields[0].identifies is identifies
