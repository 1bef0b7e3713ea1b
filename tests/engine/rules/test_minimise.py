"""Data-scope projection: only what the scope selects, at the same positions, never
changing the record."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.rules.conditions import RuleError
from engine.rules.minimise import Scope, ScopeError, compile_scope

RECORD = {
    "message": {"type": "ORU", "event": "R01", "control_id": "C1"},
    "patient": {
        "identifiers": [{"value": "111", "type": "MR"}, {"value": "222", "type": "SS"}],
        "birth_date": "1980-01-02",
        "gender": None,
        "names": [{"family": "DOE", "given": "JANE"}],
    },
    "results": [
        {"code": "GLU", "value": 7.5, "abnormal_flags": ["H", "A"], "units": None},
        {"code": "NOTE", "value": "see comment"},
        {"code": "K", "value": 4.1, "abnormal_flags": ["N"]},
    ],
    "orders": [],
    "merge": {},
}


@pytest.mark.parametrize(
    "paths, expected",
    [
        ([], {}),
        (["patient.birth_date"], {"patient": {"birth_date": "1980-01-02"}}),
        (["message"], {"message": {"type": "ORU", "event": "R01", "control_id": "C1"}}),
        # a whole subtree, None inside it included
        (["results"], {"results": RECORD["results"]}),
        (["results[*]"], {"results": RECORD["results"]}),
        # lists keep positions: a hole before a selected element becomes {}, and
        # trailing elements with nothing selected are dropped
        (["results[*].abnormal_flags"],
         {"results": [{"abnormal_flags": ["H", "A"]}, {}, {"abnormal_flags": ["N"]}]}),
        (["results[*].abnormal_flags[*]"],
         {"results": [{"abnormal_flags": ["H", "A"]}, {}, {"abnormal_flags": ["N"]}]}),
        (["patient.identifiers[*].value", "results[*].units"],
         {"patient": {"identifiers": [{"value": "111"}, {"value": "222"}]}}),
        # entries merge; a shorter path takes the whole subtree, in either order
        (["patient.identifiers[*].value", "patient.identifiers[*].type"],
         {"patient": {"identifiers": RECORD["patient"]["identifiers"]}}),
        (["patient.identifiers[*].value", "patient.identifiers"],
         {"patient": {"identifiers": RECORD["patient"]["identifiers"]}}),
        (["patient", "patient.birth_date"], {"patient": RECORD["patient"]}),
        (["message.type", "results[*].code"],
         {"message": {"type": "ORU"}, "results": [{"code": "GLU"}, {"code": "NOTE"},
                                                  {"code": "K"}]}),
        # absent, None, empty and shape mismatches select nothing
        (["patient.gender"], {}),
        (["patient.mothers_maiden_name", "encounter.class"], {}),
        (["orders"], {"orders": []}),
        (["orders[*].code"], {}),
        (["merge.prior_identifiers[*]"], {}),
        (["patient.birth_date[*]"], {}),
        (["message[*]"], {}),
        (["patient.names.family"], {}),
    ],
)
def test_projection(paths, expected):
    assert compile_scope(paths).project(RECORD) == expected


def test_holes_keep_the_shape_of_the_element():
    record = {"grid": [[{"x": 1}], ["skip"], [{"x": 2}, {"y": 3}]], "rows": [None, {"a": 1}]}
    assert compile_scope(["grid[*][*].x", "rows[*].a"]).project(record) == {
        "grid": [[{"x": 1}], [], [{"x": 2}]],
        "rows": [{}, {"a": 1}],
    }


def test_key_order_follows_the_record():
    projected = compile_scope(["results", "message.event", "message.type"]).project(RECORD)
    assert list(projected) == ["message", "results"]
    assert list(projected["message"]) == ["type", "event"]


def test_the_record_is_never_changed_or_shared():
    record = copy.deepcopy(RECORD)
    projected = compile_scope(["patient", "results[*].abnormal_flags"]).project(record)
    assert record == RECORD
    projected["patient"]["identifiers"][0]["value"] = "changed"
    projected["results"][0]["abnormal_flags"].append("X")
    assert record == RECORD


def test_a_non_mapping_projects_to_nothing():
    assert compile_scope(["a"]).project([1, 2]) == {}  # type: ignore[arg-type]


def test_the_scope_keeps_its_paths():
    scope = compile_scope(["patient.birth_date", "results[*].code"])
    assert isinstance(scope, Scope)
    assert scope.paths == ("patient.birth_date", "results[*].code")


@pytest.mark.parametrize(
    "paths, fragment",
    [
        (["patient.birth_date", "patient..name"], "data scope entry 1: 'patient..name' is not"),
        (["results[0].code"], "data scope entry 0: 'results[0].code' is not a canonical path"),
        ([""], "data scope entry 0: '' is not a canonical path"),
        ([5], "data scope entry 0: 5 is not a canonical path"),
    ],
)
def test_bad_scope_entries(paths, fragment):
    with pytest.raises(ScopeError) as caught:
        compile_scope(paths)
    assert isinstance(caught.value, RuleError)
    assert fragment in str(caught.value)


# ---- properties ------------------------------------------------------------------------------

KEYS = ["a", "b", "c"]
leaf_values = st.one_of(st.none(), st.integers(0, 9), st.sampled_from(["x", "", "y"]))
trees = st.recursive(
    leaf_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=12,
)
records = st.dictionaries(st.sampled_from(KEYS), trees, max_size=3)
steps = st.lists(st.sampled_from([*KEYS, "[*]"]), min_size=1, max_size=4)


def as_path(parts: list[str]) -> str:
    text = ""
    for part in parts:
        text += part if part == "[*]" else ("." if text else "") + part
    return text


scopes = st.lists(
    steps.filter(lambda parts: parts[0] != "[*]").map(as_path), max_size=3
)


def scalar_leaves(node, where=()):
    """(location, value) of every non-None scalar: locations keep list indexes."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from scalar_leaves(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from scalar_leaves(value, (*where, index))
    elif node is not None:
        yield where, node


def selected(where, scope_steps) -> bool:
    """Whether a location lies under one scope path (an index matches [*])."""
    if len(where) < len(scope_steps):
        return False
    for step, part in zip(scope_steps, where, strict=False):
        if (step == "[*]") != isinstance(part, int) or (step != "[*]" and step != part):
            return False
    return True


def parse_steps(path: str) -> list[str]:
    found = []
    for part in path.split("."):
        name = part.replace("[*]", "")
        found += [name] + ["[*]"] * part.count("[*]")
    return found


def at(node, where):
    for part in where:
        node = node[part]
    return node


@given(records, scopes)
def test_projection_holds_exactly_the_selected_leaves(record, paths):
    original = copy.deepcopy(record)
    projected = compile_scope(paths).project(record)
    assert record == original
    parsed = [parse_steps(path) for path in paths]
    for where, value in scalar_leaves(projected):
        assert any(selected(where, steps) for steps in parsed), (where, paths)
        assert at(record, where) == value
    for where, value in scalar_leaves(record):
        if any(selected(where, steps) for steps in parsed):
            assert at(projected, where) == value, (where, paths)
