"""bench/fuzz's pure parts: mutations replay byte for byte, gentle ones leave MSH as it
was, none puts an MLLP block marker in a payload, and plans decode the same way every
time."""

from __future__ import annotations

import json
import random

import pytest

from bench.fuzz.mutations import (
    FHIR_EDITS,
    GENTLE,
    HARSH,
    Edit,
    mutate_fhir,
    mutate_hl7,
    random_frame,
    with_fhir_ids,
    with_ids,
)
from bench.fuzz.plans import FHIR, WORDS_PER_INPUT, input_plan
from bench.fuzz.seeds import load_seeds
from engine.hl7v2 import parse

SEEDS = load_seeds()
DONORS = [seed.segments for seed in SEEDS.corpus]


def _edits(generator: random.Random, operators: tuple[str, ...]) -> list[Edit]:
    return [Edit(generator.choice(operators), generator.randrange(2**16),
                 generator.randrange(2**16), generator.randrange(2**26)) for _ in range(3)]


@pytest.mark.parametrize("number", range(40))
def test_a_gentle_mutation_keeps_msh_and_replays_byte_for_byte(number):
    generator = random.Random(number)
    seed = SEEDS.corpus[number % len(SEEDS.corpus)]
    segments = with_ids(seed.segments, b"CTL-1", b"MRN-1")
    edits = _edits(generator, GENTLE)

    mutated = mutate_hl7(segments, edits, DONORS)

    assert mutated == mutate_hl7(segments, edits, DONORS)
    assert mutated.split(b"\r")[0] == segments[0]
    assert b"\x0b" not in mutated and b"\x1c" not in mutated


@pytest.mark.parametrize("number", range(40))
def test_no_mutation_or_random_frame_holds_a_block_marker(number):
    generator = random.Random(1_000 + number)
    seed = SEEDS.hostile[number % len(SEEDS.hostile)]
    for payload in (mutate_hl7(seed.segments, _edits(generator, GENTLE + HARSH), DONORS),
                    random_frame(generator.randrange(2**32), generator.randrange(4_000))):
        assert b"\x0b" not in payload and b"\x1c" not in payload


def test_fresh_ids_make_a_new_message_for_a_new_patient():
    message = parse(b"\r".join(with_ids(SEEDS.corpus[0].segments, b"CTL-9", b"MRN-9")))
    assert (message.get("MSH-10"), message.get("PID-3.1"), message.get("PID-3.4")) == (
        "CTL-9", "MRN-9", "FUZZ")


def test_fhir_mutations_replay_and_nesting_goes_deep():
    document = with_fhir_ids(SEEDS.fhir[0][1], "u-1")
    generator = random.Random(7)
    edits = _edits(generator, FHIR_EDITS)
    assert mutate_fhir(document, edits) == mutate_fhir(document, edits)
    nested = mutate_fhir(document, [Edit("nest", 0, 0, 5_000)])
    assert b"[" * 5_000 in nested
    with pytest.raises(RecursionError):
        json.loads(nested)  # what a parser that recurses must be kept from


def test_a_plan_decodes_the_same_from_the_same_words():
    words = tuple(random.Random(3).randrange(2**64) for _ in range(WORDS_PER_INPUT))
    assert input_plan(words, fhir=False) == input_plan(words, fhir=False)
    assert input_plan(words, fhir=True).kind in (FHIR, "fhir-valid")
