"""Shared by the FHIR tests: the sample FHIR documents, the HL7 v2 corpus converted to
canonical records by the shipped mappings, and the clinic-north data scope."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from fhir.resources.R4B.bundle import Bundle

from engine.fhir.bundle import encode_bundle
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


def checked_bundle(record: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The record's Bundle, checked: valid R4B, every reference resolving inside it."""
    bundle = encode_bundle(record, message_id)
    Bundle.model_validate(bundle)
    urls = {entry["fullUrl"] for entry in bundle.get("entry", ())}
    assert references(bundle) <= urls, "a reference does not resolve inside the Bundle"
    return bundle


def references(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["reference"]} if isinstance(value.get("reference"), str) else set()
        return found.union(*(references(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(references(item) for item in value))
    return set()


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle.get("entry", ())
            if entry["resource"]["resourceType"] == resource_type]


def by_url(bundle: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    return next(entry["resource"] for entry in bundle["entry"]
                if entry["fullUrl"] == reference["reference"])
