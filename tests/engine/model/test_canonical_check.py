"""The pipeline's compiled schema check (fastjsonschema) must accept exactly what
jsonschema accepts, or a record could pass it that the canonical schema forbids."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.hl7v2 import parse
from engine.model.canonical import canonical_errors
from engine.model.schemas import validator
from engine.rules.rule_set import build_mapper
from engine.rules.source import read_rule_source
from tests.json_positions import positions
from tests.samples import CORPUS_FILES

ROOT = Path(__file__).resolve().parents[3]
JUNK: list[Any] = [None, 0, 1.5, -3, True, "", "x", "not-a-code", [], [1], {}, {"k": "v"}]


@cache
def corpus_records() -> list[dict[str, Any]]:
    mapper = build_mapper(read_rule_source(ROOT))
    return [mapper.convert(parse(path.read_bytes())).record for path in CORPUS_FILES]


def agrees(record: Any) -> bool:
    return (canonical_errors(record) == []) == validator("canonical").is_valid(record)


def test_every_corpus_record_passes_both():
    for record in corpus_records():
        assert canonical_errors(record) == []
        assert validator("canonical").is_valid(record)


def test_a_broken_record_is_worded_by_jsonschema():
    record = copy.deepcopy(corpus_records()[0])
    record["patient"]["unexpected"] = 1
    del record["message"]
    problems = canonical_errors(record)
    assert ("(document)", "'message' is a required property") in problems
    assert any(where == "patient" and "unexpected" in what for where, what in problems)


@given(st.data())
def test_compiled_check_agrees_with_jsonschema_on_mutated_records(data):
    record = copy.deepcopy(data.draw(st.sampled_from(corpus_records())))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = positions(record)[1:]  # not the record itself
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = record
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(JUNK)))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["extra", "id", "value", "system"]))] = (
                copy.deepcopy(data.draw(st.sampled_from(JUNK))))
    assert agrees(record)


def test_compiling_the_check_leaves_the_shared_schema_intact():
    from engine.model.schemas import fast_check, schema

    before = copy.deepcopy(schema("canonical"))
    fast_check.cache_clear()
    fast_check("canonical")
    assert schema("canonical") == before


def test_local_references_are_inlined_for_the_compiled_check():
    import json

    import pytest

    from engine.model.schemas import SchemaMissingError, inline_local_refs, schema

    inlined = inline_local_refs(schema("canonical"))
    assert "$ref" not in json.dumps(inlined) and "$defs" not in inlined
    looped = {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    with pytest.raises(SchemaMissingError):
        inline_local_refs(looped)
