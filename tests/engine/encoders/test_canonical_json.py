"""The canonical-json body: deterministic, compact, and the record itself."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.encoders.canonical_json import CanonicalJsonError, encode_canonical_json
from engine.errors import SwitchboardError
from tests.engine.encoders.roundtrip import convert, lab_scope
from tests.samples import CORPUS_FILES, corpus_ids


def test_keys_are_sorted_and_separators_compact():
    record = {"patient": {"names": [{"given": "Zoë", "family": "DOE"}]}, "message": {"type": "ADT"}}
    assert encode_canonical_json(record) == (
        '{"message":{"type":"ADT"},"patient":{"names":[{"family":"DOE","given":"Zoë"}]}}'
    )


def test_the_same_record_gives_the_same_text_whatever_its_key_order():
    one = {"a": 1, "b": {"x": [1, 2], "y": None}}
    other = {"b": {"y": None, "x": [1, 2]}, "a": 1}
    assert encode_canonical_json(one) == encode_canonical_json(other)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_corpus_records_round_trip(path):
    record = lab_scope().project(convert(path.read_bytes()))
    text = encode_canonical_json(record)
    assert json.loads(text) == record
    assert encode_canonical_json(json.loads(text)) == text
    assert "\n" not in text


JSON = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), JSON, max_size=5))
def test_any_json_record_round_trips_deterministically(record):
    text = encode_canonical_json(record)
    assert json.loads(text) == record
    assert encode_canonical_json(json.loads(text)) == text


@pytest.mark.parametrize(
    "record",
    [
        {"results": [{"value": math.nan}]},
        {"results": [{"value": math.inf}]},
        {"patient": {"birth_date": object()}},
    ],
)
def test_what_json_cannot_carry_is_refused_without_the_value(record):
    with pytest.raises(CanonicalJsonError) as caught:
        encode_canonical_json(record)
    assert isinstance(caught.value, SwitchboardError)
    # A fixed sentence: json's own text (which can quote the value) is not chained.
    assert str(caught.value) == (
        "the record is not plain JSON data (a value is not text, a finite number, a "
        "boolean, null, a list or an object). Check the mapping that produced the record"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
