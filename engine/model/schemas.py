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
    # fastjsonschema rewrites the schema it is given; the shared one must stay intact.
    return fastjsonschema.compile(copy.deepcopy(schema(name)))


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
