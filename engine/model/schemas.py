"""The JSON Schemas that ship in ``rules/schema/``, loaded once and compiled."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator

from engine.errors import SwitchboardError
from engine.malloc_arenas import trim_heap

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "rules" / "schema"


class SchemaMissingError(SwitchboardError):
    """A shipped JSON Schema cannot be found or read."""


@cache
def schema(name: str) -> dict[str, Any]:
    """The schema ``rules/schema/<name>.schema.json``."""
    path = SCHEMA_DIR / f"{name}.schema.json"
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SchemaMissingError(
            f"cannot read the {name} schema at {path}: {exc}",
            hint="Run Switchboard from its checkout, where rules/schema ships",
        ) from None
    return loaded


@cache
def validator(name: str) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema(name))
    return Draft202012Validator(schema(name))


@cache
def fast_check(name: str) -> Any:
    """The schema compiled to Python by fastjsonschema: it only says valid or not, ten
    times faster than jsonschema, which the pipeline needs for every message. The
    schemas use only keywords both libraries read alike (a test checks they agree)."""
    # Its own copy: fastjsonschema rewrites the schema it is given, and with local
    # references inlined, since its generated code formats a name for every $ref call
    # (65 -> 24 us per canonical record).
    compiled = fastjsonschema.compile(inline_local_refs(schema(name)))
    # Compiling the generated code is a burst of memory freed at once: give it back.
    trim_heap()
    return compiled


def inline_local_refs(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with every ``#/$defs/NAME`` reference replaced by that
    definition (other keys beside the $ref are kept); the schemas have no cycles."""
    definitions = document.get("$defs", {})

    def inline(node: Any, depth: int) -> Any:
        if depth > 32:
            raise SchemaMissingError("a schema's $defs refer to themselves in a cycle")
        if isinstance(node, list):
            return [inline(item, depth) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = inline(definitions[ref.removeprefix("#/$defs/")], depth + 1)
            rest = {key: inline(value, depth) for key, value in node.items() if key != "$ref"}
            return {**target, **rest}
        return {key: inline(value, depth) for key, value in node.items() if key != "$defs"}

    inlined: dict[str, Any] = inline(copy.deepcopy(document), 0)
    return inlined


def schema_errors(name: str, document: Any) -> list[tuple[str, str]]:
    """(location, problem) for every way ``document`` breaks the schema, in a stable
    order; locations use 0-based list indexes: ``rows[3].to[0]``."""
    found = []
    for error in validator(name).iter_errors(document):
        found.append((format_location(error.absolute_path), error.message))
    return sorted(found)


def format_location(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"
