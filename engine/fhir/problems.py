"""pydantic's validation problems worded for people, without the input.

pydantic's own text carries ``input_value=...``: a patient's name or birth date would
end up in the journal's status reason and in logs. Each problem is worded here from its
location and kind only, and a wording that would still quote the input is replaced by
the bare kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

_SHOWN_PROBLEMS = 3
_ELEMENT_NAME = re.compile(r"_?[A-Za-z][A-Za-z0-9]*")
_WORDING = {
    "missing": "a required element is missing",
    "model_field_validation.missing": "a required element is missing",
    "extra_forbidden": "holds an element FHIR R4 does not define here",
    "string_pattern_mismatch": "is not a valid value for its FHIR type",
    "json_invalid": "is not a FHIR element",
}


def describe(resource_type: str, problems: list[Any]) -> str:
    """The first problem's wording (its path is the error's location), then the next
    few with their paths."""
    lines = list(dict.fromkeys(
        (element_path(resource_type, problem), _wording(problem)) for problem in problems))
    text = "; ".join([lines[0][1]] + [f"{path}: {wording}"
                                       for path, wording in lines[1:_SHOWN_PROBLEMS]])
    more = len(lines) - _SHOWN_PROBLEMS
    return f"{text} (and {more} more)" if more > 0 else text


def element_path(resource_type: str, problem: Mapping[str, Any]) -> str:
    """``Patient.birthDate``, ``Bundle.entry[0].resource.gender``: element names and
    positions only. The key of an element FHIR does not define is input, so the path
    stops at its parent."""
    steps = list(problem.get("loc") or ())
    if problem.get("type") == "extra_forbidden" and steps:
        steps.pop()
    text = resource_type
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        # "root" is not an element: fhir_core's own validators file problems under it.
        elif isinstance(step, str) and step != "root" and _ELEMENT_NAME.fullmatch(step):
            text += f".{step}"
    return text


def _wording(problem: Mapping[str, Any]) -> str:
    kind = str(problem.get("type") or "invalid")
    text = _WORDING.get(kind) or str(problem.get("msg") or kind).removeprefix("Value error, ")
    text = " ".join(text.split()).rstrip(".")
    if len(text) > 100:
        text = text[:100] + "..."
    # pydantic's messages do not quote the input today; make sure none ever does.
    return f"not a valid value ({kind})" if _quotes_input(problem.get("input"), text) else text


def _quotes_input(value: Any, text: str) -> bool:
    return any(shown in text for shown in _shown(value, 0))


def _shown(value: Any, depth: int) -> Iterator[str]:
    """The input as text could appear in a message: the value itself, and the longer
    keys and values inside it."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        shown = str(value)
        if shown and (depth == 0 or len(shown) >= 4):
            yield shown
    elif depth < 3 and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _shown(key, depth + 1)
            yield from _shown(item, depth + 1)
    elif depth < 3 and isinstance(value, list):
        for item in value:
            yield from _shown(item, depth + 1)
