"""Every field of the canonical record says what it holds and where it comes from: the
rule studio's field picker shows these words, so a field cannot arrive undescribed."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from engine.model.schemas import schema


def described(node: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """(path, description) of every property below ``node``, through nested objects
    and list items, in the schema's order."""
    for key, child in node.get("properties", {}).items():
        yield f"{path}.{key}" if path else key, child.get("description")
        yield from described(child, f"{path}.{key}" if path else key)
        if isinstance(child.get("items"), dict):
            yield from described(child["items"], f"{path}.{key}[*]" if path else f"{key}[*]")


def every_property(root: dict[str, Any]) -> list[tuple[str, Any]]:
    found = list(described(root, ""))
    for name, definition in root["$defs"].items():
        found.append((f"$defs/{name}", definition.get("description")))
        found.extend(described(definition, f"$defs/{name}"))
    return found


def undescribed(root: dict[str, Any]) -> list[str]:
    return [path for path, words in every_property(root)
            if not isinstance(words, str) or not words.strip()]


def test_every_property_of_the_canonical_schema_is_described() -> None:
    assert undescribed(schema("canonical")) == []


def test_the_walk_reaches_nested_objects_list_items_and_shared_types() -> None:
    paths = {path for path, _ in every_property(schema("canonical"))}
    assert {"results[*].abnormal_flags", "patient.names[*].use_code", "$defs/person.family",
            "$defs/observation_value.attachment.data_at", "task_outcome.origin.type",
            "$defs/location.description"} <= paths


def test_a_field_without_words_is_named() -> None:
    root = copy.deepcopy(schema("canonical"))
    del root["properties"]["patient"]["properties"]["names"]["items"]["properties"][
        "family"]["description"]
    root["$defs"]["coded"]["properties"]["system"]["description"] = " "
    assert undescribed(root) == ["patient.names[*].family", "$defs/coded.system"]


def test_a_result_field_names_its_hl7_source() -> None:
    results = schema("canonical")["properties"]["results"]["items"]["properties"]
    assert "OBX-8" in results["abnormal_flags"]["description"]
    assert "OBX-3.1 (Observation Identifier)" in results["code"]["description"]
