"""Acceptance: every corpus message the default mappings cover converts to a canonical
record that validates, and the key fields match their source fields."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from engine.hl7v2 import Message, parse
from engine.model.canonical import canonical_errors
from engine.model.hl7_time import TimeFormatError, hl7_to_iso
from engine.model.mapping import Mapper
from engine.rules.rule_set import build_mapper
from engine.rules.source import read_rule_source
from tests.samples import CORPUS_FILES, corpus_ids

ROOT = Path(__file__).resolve().parents[3]


@cache
def default() -> tuple[Mapper, dict[str, dict[str, str]]]:
    source = read_rule_source(ROOT)
    tables = {name: dict(table.entries) for name, table in source.tables.items()}
    return build_mapper(source), tables


def present(values: list[str]) -> list[str]:
    return [v for v in values if v]


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_ids())
def test_covered_messages_convert_validate_and_match_their_sources(path):
    mapper, tables = default()
    message = parse(path.read_bytes())
    conversion = mapper.convert(message)
    record = conversion.record
    assert canonical_errors(record) == []
    if not conversion.covered:
        return
    check_envelope(record, message)
    check_patient(record, message, tables)
    check_encounter(record, message, tables)
    if message.message_type != "MDM":
        check_results(record, message)


def check_envelope(record, message: Message):
    assert record["message"]["type"] == message.message_type
    assert record["message"]["event"] == message.trigger_event
    assert record["message"]["control_id"] == message.control_id


def check_patient(record, message: Message, tables):
    patient = record["patient"]
    # PID-3 first: the first identifier is the one the patient is known by.
    assert [i["value"] for i in patient.get("identifiers", [])] == present(
        message.get_all("PID-3.1") + message.get_all("PID-2.1") + message.get_all("PID-4.1")
    )
    families = [n.get("family") for n in patient.get("names", [])]
    assert present(families) == present(message.get_all("PID-5.1"))
    assert patient.get("sex_code") == (message.get("PID-8") or None)
    assert patient.get("gender") == tables["administrative-sex"].get(message.get("PID-8") or "")
    assert patient.get("birth_date") == iso_or_none(message.get("PID-7"))


def check_encounter(record, message: Message, tables):
    encounter = record["encounter"]
    code = message.get("PV1-2") or None
    assert encounter.get("class_code") == code
    assert encounter.get("class") == tables["patient-class"].get(code or "")


def check_results(record, message: Message):
    results = record["results"]
    count = len(message.get_all("OBX[*]", raw=True))
    assert len(results) == count
    for n, result in enumerate(results, start=1):
        assert result.get("code") == (message.get(f"OBX[{n}]-3.1") or None)
        sent = (message.get_raw(f"OBX[{n}]-5") or "").strip("^~&")
        value = result.get("value")
        if value is None:
            assert sent in ("", '""')
            continue
        assert value.get("type") == (message.get(f"OBX[{n}]-2") or None)
        if "number" in value:  # NM-1, or SN-2 after its comparator
            component = 2 if value["type"] == "SN" else 1
            assert value["number"] == float(message.get(f"OBX[{n}]-5.{component}"))


def iso_or_none(value: str | None) -> str | None:
    try:
        return hl7_to_iso(value) if value else None
    except TimeFormatError:
        return None


def test_the_corpus_exercises_every_covered_type():
    mapper, _ = default()
    seen = set()
    covered = 0
    for path in CORPUS_FILES:
        message = parse(path.read_bytes())
        if mapper.is_covered(message.message_type, message.trigger_event):
            seen.add(f"{message.message_type}^{message.trigger_event}")
            covered += 1
    # The corpus holds no ADT^A12; its mapping is the same as A11's and A13's.
    assert sorted(mapper.covers - seen) == ["ADT^A12"]
    assert covered == 39
