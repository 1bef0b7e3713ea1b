"""The sample HL7 v2 corpus shipped with the tests (see tests/corpus/README.md)."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).parent / "corpus" / "hl7v2"
CORPUS_FILES = sorted(CORPUS.glob("*/*.hl7"))


def corpus_ids() -> list[str]:
    return [f"{path.parent.name}/{path.name}" for path in CORPUS_FILES]


def read(name: str) -> bytes:
    return (CORPUS / name).read_bytes()
