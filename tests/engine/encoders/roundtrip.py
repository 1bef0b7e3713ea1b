"""Shared by the encoder tests: the shipped mappings, the lab-system scope, and the
envelope an encoded message carries for its new hop."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from engine.encoders.hl7v2 import NOT_WRITTEN, encode_hl7v2
from engine.hl7v2 import parse
from engine.hl7v2.ack import hl7_timestamp
from engine.model.canonical_path import EVERY, parse_canonical_path
from engine.model.hl7_time import hl7_to_iso
from engine.model.mapping import Mapper
from engine.rules.minimise import Scope, compile_scope
from engine.rules.rule_set import build_mapper
from engine.rules.source import read_rule_source

ROOT = Path(__file__).resolve().parents[3]
SENT_AT = datetime(2024, 5, 6, 7, 8, 9, 123400, tzinfo=timezone(timedelta(hours=-5)))
HOP = {
    "control_id": "SB000042",
    "sending_application": "SWITCHBOARD",
    "sending_facility": "RIVERSIDE",
    "receiving_application": "LIS",
    "receiving_facility": "RIVERSIDE-LAB",
    "version": "2.5.1",
}


@cache
def mapper() -> Mapper:
    return build_mapper(read_rule_source(ROOT))


@cache
def lab_scope() -> Scope:
    entry = yaml.safe_load((ROOT / "catalog/connections/lab-system.yaml").read_text())
    return compile_scope(entry["data_scope"])


def convert(data: bytes | str) -> dict[str, Any]:
    return mapper().convert(parse(data)).record


def encode(record: Mapping[str, Any]) -> str:
    return encode_hl7v2(record, sent_at=SENT_AT, **HOP)


def encode_and_convert(record: Mapping[str, Any]) -> dict[str, Any]:
    """Encode, send as UTF-8 (as a connector would), parse and convert again; without
    what the mapping derives beyond what the encoder writes (NOT_WRITTEN)."""
    return written(convert(encode(record).encode("utf-8")))


def written(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record without what the encoder does not write (NOT_WRITTEN)."""
    found = copy.deepcopy(dict(record))
    for path in NOT_WRITTEN:
        _drop(found, list(parse_canonical_path(path)))
    return found


def _drop(node: Any, steps: list[Any]) -> None:
    if not steps:
        return
    step, rest = steps[0], steps[1:]
    if step == EVERY:
        for item in node if isinstance(node, list) else ():
            _drop(item, rest)
        return
    if not isinstance(node, dict) or step not in node:
        return
    if rest:
        _drop(node[step], rest)
    else:
        del node[step]


def new_hop(message: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope the encoded message reads back as: the record's, except what
    describes the new hop (control id, sender, receiver, time, version), MSH-11 ``P``
    when the record had none, and the acknowledgement modes, which belong to the
    outbound connection and are not copied (see NOT_ROUND_TRIPPED)."""
    expected = dict(message)
    expected.update(HOP)
    expected["source_format"] = "hl7v2"
    expected["sent_at"] = hl7_to_iso(hl7_timestamp(SENT_AT))
    expected["processing_id"] = message.get("processing_id") or "P"
    expected.pop("accept_ack", None)
    expected.pop("application_ack", None)
    return expected


def leaf_paths(value: Any, prefix: tuple[str, ...] = ()) -> set[str]:
    """Canonical paths (``[*]`` for list items) of every leaf holding a value."""
    if isinstance(value, Mapping):
        return {p for key, item in value.items() for p in leaf_paths(item, (*prefix, key))}
    if isinstance(value, list):
        return {p for item in value for p in leaf_paths(item, (*prefix, EVERY))}
    if value is None or value == "":
        return set()
    return {".".join(prefix).replace(".[*]", "[*]")}
