"""The messages the fuzzer starts from: the HL7 v2 corpus (valid messages written by
others), the hostile-input corpus (each aimed at one weakness) and FHIR R4 resources
and bundles from the FHIR reader's tests, each read once and made ready to mutate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "hl7v2"
HOSTILE = ROOT / "tests" / "hostile" / "inputs"
FHIR = (ROOT / "tests" / "engine" / "fhir" / "samples",
        ROOT / "tests" / "engine" / "fhir" / "golden")
# MLLP's block markers: no payload may hold them, or one input would become two frames
# (or none) and the sender could no longer tell which answer is whose.
FRAME_MARKERS = b"\x0b\x1c"


@dataclass(frozen=True)
class Hl7Seed:
    """One HL7 v2 message as segments (without their CR), from ``name``."""

    name: str
    segments: tuple[bytes, ...]


@dataclass(frozen=True)
class Seeds:
    corpus: tuple[Hl7Seed, ...]
    hostile: tuple[Hl7Seed, ...]
    fhir: tuple[tuple[str, Any], ...]  # (file name, parsed JSON)


def segments_of(raw: bytes, *, ready: bool) -> tuple[bytes, ...]:
    """``raw`` split into segments; ``ready`` also drops a BOM and blank lines and
    blanks MSH-15 and MSH-16 (an ordinary sender in original mode, owed an ACK)."""
    raw = raw.translate(None, FRAME_MARKERS)
    if not ready:
        return tuple(raw.split(b"\r"))
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    segments = [line for line in lines if line.strip()]
    if segments and segments[0].startswith(b"MSH") and len(segments[0]) > 8:
        separator = segments[0][3:4]
        fields = segments[0].split(separator)
        if len(fields) > 14:
            fields[14] = b""
        if len(fields) > 15:
            fields[15] = b""
        segments[0] = separator.join(fields)
    return tuple(segments)


def load_seeds() -> Seeds:
    corpus = tuple(Hl7Seed(path.name, segments_of(path.read_bytes(), ready=True))
                   for path in sorted(CORPUS.rglob("*.hl7")))
    hostile = tuple(Hl7Seed(path.name, segments_of(path.read_bytes(), ready=False))
                    for path in sorted(HOSTILE.glob("*.hl7")))
    fhir = tuple((path.name, json.loads(path.read_text(encoding="utf-8")))
                 for folder in FHIR for path in sorted(folder.glob("*.json")))
    return Seeds(corpus, hostile, fhir)
