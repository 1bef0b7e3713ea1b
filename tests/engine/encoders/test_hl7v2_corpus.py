"""Acceptance over the whole sample corpus: a record converted from each message,
minimised to the lab system's scope (and not minimised at all), encodes to HL7 v2 that
parses and converts back to the same record, apart from the envelope of the new hop."""

from __future__ import annotations

import copy

import pytest

from engine.hl7v2 import parse
from engine.hl7v2.mllp import encode_frame
from engine.model.canonical import canonical_errors
from tests.engine.encoders.roundtrip import (
    convert,
    encode,
    encode_and_convert,
    lab_scope,
    leaf_paths,
    new_hop,
    written,
)
from tests.samples import CORPUS_FILES, corpus_ids

# Values the encoded message implies without the record holding them: a destination
# that may see the normalised value may see the code it stands for.
IMPLIED_OUTSIDE_THE_SCOPE = {
    "encounter.class_code": "PV1-2 is the code of encounter.class",
    "encounter.status": "the mapping derives it from an ADT event in MSH-9.2",
}


def record_of(path) -> dict:
    return convert(path.read_bytes())


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_a_lab_system_record_round_trips(path):
    scope = lab_scope()
    first = written(scope.project(record_of(path)))
    again = written(scope.project(encode_and_convert(first)))
    # Exactly the same minimised record: every field the lab may receive comes back
    # with its value; only the envelope describes the new hop.
    assert again == {**first, "message": new_hop(first["message"])}


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_a_whole_record_round_trips(path):
    first = written(record_of(path))
    again = written(encode_and_convert(first))
    assert canonical_errors(again) == []
    assert again == {**first, "message": new_hop(first["message"]),
                     "results": without_data_at(first["results"])}


def without_data_at(results: list[dict]) -> list[dict]:
    """Results as they come back: an ED's content is never written (see
    NOT_ROUND_TRIPPED), so its value no longer says where the content is."""
    found = copy.deepcopy(results)
    for result in found:
        result.get("value", {}).get("attachment", {}).pop("data_at", None)
    return found


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_nothing_outside_the_lab_scope_is_sent(path):
    scope = lab_scope()
    sent = written(encode_and_convert(scope.project(record_of(path))))
    outside = leaf_paths(sent) - leaf_paths(scope.project(sent))
    assert outside <= set(IMPLIED_OUTSIDE_THE_SCOPE)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_the_encoded_message_is_well_formed_er7(path):
    text = encode(lab_scope().project(record_of(path)))
    assert text.startswith("MSH|^~\\&|") and text.endswith("\r")
    assert "\n" not in text
    message = parse(text.encode("utf-8"))
    assert message.warnings == []
    assert message.segment_texts() == text.split("\r")[:-1]
    assert all(len(segment) > 3 and segment[3] == "|" for segment in message.segment_texts())
    encode_frame(text.encode("utf-8"))  # MLLP can carry it
