"""Durations as analysts write them in rule files (``500ms``, ``30s``, ``5m``), in seconds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from engine.errors import SwitchboardError

_DURATION = re.compile(r"(0|[1-9][0-9]*)(ms|s|m|h|d)")
_UNIT_SECONDS: Final[Mapping[str, float]] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DURATION_HINT: Final = "Write a whole number followed by ms, s, m, h or d, e.g. 500ms, 30s, 5m"


class DurationError(SwitchboardError):
    """A duration string is malformed; callers add where it was written."""


def parse_duration(text: object) -> float:
    """Seconds in ``text``: one whole number and one unit (``500ms``, ``30s``, ``5m``,
    ``2h``, ``1d``).

    Strict on purpose: ``90`` (seconds or minutes?), ``1.5h`` or ``1h30m`` are refused when
    the file is saved rather than guessed at when a delivery fails.
    """
    if isinstance(text, str):
        match = _DURATION.fullmatch(text)
        if match is not None:
            return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise DurationError(f"{text!r} is not a duration", hint=_DURATION_HINT)
