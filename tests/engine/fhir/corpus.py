"""Shared by the FHIR tests: the sample FHIR documents, the HL7 v2 corpus converted to
canonical records by the shipped mappings, and the clinic-north data scope."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from engine.hl7v2 import parse
from engine.model.mapping import Mapper
from engine.rules.minimise import Scope, compile_scope
from engine.rules.rule_set import build_mapper
from engine.rules.source import read_rule_source

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = Path(__file__).parent / "samples"
SAMPLE_NAMES = sorted(path.name for path in SAMPLES.glob("*.json"))


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def body(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8")


@cache
def mapper() -> Mapper:
    return build_mapper(read_rule_source(ROOT))


def convert(path: Path) -> dict[str, Any]:
    return mapper().convert(parse(path.read_bytes())).record


@cache
def clinic_north() -> Scope:
    entry = yaml.safe_load((ROOT / "catalog/connections/clinic-north.yaml").read_text())
    return compile_scope(entry["data_scope"])
