"""Checks every JSON Schema of the rule files must pass: the GUI and the docs render from
the schema, so each property needs a description and examples that the schema accepts."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator


def schema_properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(path, schema) of every property declared anywhere in ``node``; conditions
    (``if``/``then``/``else``) only refer to properties declared elsewhere."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            found.append((f"{path}.{name}", sub))
        for key, sub in node.items():
            if key not in ("if", "then", "else"):
                found.extend(schema_properties(sub, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, sub in enumerate(node):
            found.extend(schema_properties(sub, f"{path}[{index}]"))
    return found


def assert_documented(schema: dict[str, Any], path: str, prop: dict[str, Any]) -> None:
    """``prop`` (at ``path`` in ``schema``) has a description, and examples it accepts;
    ``$ref``s resolve against the schema's ``$defs``."""
    assert prop.get("description"), path
    assert prop.get("examples"), path
    standalone = Draft202012Validator({**prop, "$defs": schema["$defs"]})
    for example in prop["examples"]:
        assert not list(standalone.iter_errors(example)), (path, example)
