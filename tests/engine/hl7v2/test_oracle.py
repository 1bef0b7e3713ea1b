"""Agreement with python-hl7 over the whole structure of every corpus message.

python-hl7 only accepts CR segment endings and strips surrounding whitespace, so both
parsers read the same normalised text; a separate test shows that normalising changes
nothing Switchboard reads.
"""

from __future__ import annotations

import re

import hl7
import pytest

from engine.hl7v2 import Message, parse
from tests.samples import CORPUS_FILES, corpus_ids

HEADERS = {"MSH", "BHS", "FHS"}


def normalised(raw: bytes) -> str:
    text = raw.decode("utf-8").lstrip("\ufeff")
    return re.sub(r"\r\n|\r|\n", "\r", text).strip()


def walk(oracle: hl7.Message) -> list[tuple[str, str]]:
    """Every (path, raw value) leaf python-hl7 exposes, addressed by HL7 path."""
    leaves: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for segment in oracle:
        sid = str(segment[0])
        seen[sid] = seen.get(sid, 0) + 1
        prefix = f"{sid}[{seen[sid]}]"
        for number in range(1, len(segment)):
            field = segment[number]
            path = f"{prefix}-{number}"
            if sid in HEADERS and number <= 2:
                leaves.append((path, str(field)))
                continue
            walk_field(field, path, leaves)
    return leaves


def walk_field(field: object, path: str, leaves: list[tuple[str, str]]) -> None:
    if isinstance(field, str):
        leaves.append((path, field))
        return
    for r, repetition in enumerate(field, start=1):  # type: ignore[attr-defined]
        rep_path = f"{path}[{r}]"
        if isinstance(repetition, str):
            leaves.append((rep_path, repetition))
            continue
        for c, component in enumerate(repetition, start=1):
            comp_path = f"{rep_path}.{c}"
            if isinstance(component, str):
                leaves.append((comp_path, component))
                continue
            for s, sub in enumerate(component, start=1):
                leaves.append((f"{comp_path}.{s}", str(sub)))


def oracle_unescape(oracle: hl7.Message, value: str) -> str:
    # python-hl7 turns \.br\ into CR; Switchboard into LF (CR is the segment terminator).
    return oracle.unescape(value).replace("\r", "\n")


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_every_leaf_agrees_with_python_hl7(path):
    text = normalised(path.read_bytes())
    oracle = hl7.parse(text)
    ours = parse(text)
    leaves = walk(oracle)
    assert len(leaves) > 20
    assert [str(s[0]) for s in oracle] == ours.segment_ids
    for hl7_path, value in leaves:
        assert ours.get_raw(hl7_path) == value, hl7_path
        if hl7_path.split("[")[0] in HEADERS and re.search(r"-[12]$", hl7_path):
            assert ours.get(hl7_path) == value, hl7_path
        else:
            assert ours.get(hl7_path) == oracle_unescape(oracle, value), hl7_path


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_field_counts_agree_with_python_hl7(path):
    """Nothing beyond what python-hl7 exposes is reported present."""
    text = normalised(path.read_bytes())
    oracle = hl7.parse(text)
    ours = parse(text)
    for occurrence, segment in enumerate(oracle, start=1):
        sid = str(segment[0])
        ours_fields = ours.get_raw(segment_path(ours, occurrence))
        assert ours_fields is not None
        last = len(segment)
        sibling = segment_path(ours, occurrence)
        assert ours.get_raw(f"{sibling}-{last}") is None, (sid, last)
        if last > 1:
            assert ours.get_raw(f"{sibling}-{last - 1}") is not None, (sid, last)


def segment_path(message: Message, position: int) -> str:
    ids = message.segment_ids
    sid = ids[position - 1]
    return f"{sid}[{ids[:position].count(sid)}]"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_normalising_line_endings_changes_nothing_switchboard_reads(path):
    raw = path.read_bytes()
    original = parse(raw)
    again = parse(normalised(raw))
    assert original.segment_ids == again.segment_ids
    last = len(original)
    for n in range(1, last + 1):
        sid_path = segment_path(original, n)
        left = original.get_raw(sid_path)
        right = again.get_raw(sid_path)
        assert left is not None
        # Normalising strips whitespace at the very end of the message only.
        assert (left.rstrip() if n == last else left) == right, sid_path
