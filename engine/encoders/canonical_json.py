"""The body for ``canonical-json`` destinations: the (minimised) canonical record as
deterministic JSON, so that the same record always gives the same bytes (stable
content hashes for dedupe and for diffs between rule versions)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.errors import SwitchboardError

MEDIA_TYPE = "application/json"


class CanonicalJsonError(SwitchboardError):
    """The record holds something JSON cannot carry (a value that is not a string,
    number, boolean, null, list or object, or a number that is not finite)."""


def encode_canonical_json(record: Mapping[str, Any]) -> str:
    """The record as compact JSON with sorted keys and non-ASCII text kept as it is
    (send it as UTF-8). NaN and infinities are refused: they are not JSON."""
    try:
        return json.dumps(
            record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError):
        # json's own text can quote the value (``nan``, a key): say it in fixed words,
        # and do not chain it, so no PHI reaches a log.
        raise CanonicalJsonError(
            "the record is not plain JSON data (a value is not text, a finite number, "
            "a boolean, null, a list or an object)",
            hint="Check the mapping that produced the record",
        ) from None
