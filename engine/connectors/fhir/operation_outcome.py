"""The issue codes of a FHIR OperationOutcome, for the reason of a refused delivery.

Only the codes are kept (``invalid``, ``required``: a fixed value set); the issues'
diagnostics and details are free text in which a server may repeat patient data.
"""

from __future__ import annotations

import json
import re
from typing import Final

__all__ = ["issue_codes"]

MAX_CODES: Final = 5
_CODE: Final = re.compile(r"[a-z][a-z-]{0,39}")


def issue_codes(body: bytes) -> list[str]:
    """The distinct issue codes of an OperationOutcome body, in order; [] for any other
    body (not JSON, cut short, another resource)."""
    try:
        outcome = json.loads(body)
    except (ValueError, RecursionError):
        return []
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return []
    issues = outcome.get("issue")
    codes: list[str] = []
    for issue in issues if isinstance(issues, list) else []:
        code = issue.get("code") if isinstance(issue, dict) else None
        if isinstance(code, str) and _CODE.fullmatch(code) and code not in codes:
            codes.append(code)
    return codes[:MAX_CODES]
