"""A FHIR server's OperationOutcome, read from the answer to a refused delivery.

Its issues are kept whole (severity, code, diagnostics, details, expression) with the
exception item, which only those who may work the item can open; the diagnostics and
details are the server's free text, in which it may repeat patient data, so they never
reach a reason or the log. What can: severities and codes (fixed value sets) and
expressions that are plain FHIRPath element paths (``Bundle.entry[3].resource.gender``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Issue", "expressions", "issue_codes", "issues", "log_words"]

MAX_CODES: Final = 5
MAX_ISSUES: Final = 20
"""A server may list an issue per element; the first ones say enough to act on."""
MAX_TEXT: Final = 1000
_CODE: Final = re.compile(r"[a-z][a-z-]{0,39}")
# An element path and nothing else: a FHIRPath function could quote a value.
_PATH: Final = re.compile(r"[A-Z][A-Za-z]{0,63}(\[[0-9]{1,4}\])?"
                          r"(\.[a-z][A-Za-z0-9]{0,63}(\[[0-9]{1,4}\])?){0,15}")


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: ``severity``, ``code`` and ``expression`` are free of
    patient data (anything else in their place is dropped); ``diagnostics`` and
    ``details`` are the server's words, as it wrote them."""

    severity: str | None
    code: str | None
    expression: tuple[str, ...]
    diagnostics: str | None
    details: str | None

    def stored(self) -> dict[str, Any]:
        """As kept on the exception item."""
        return {"severity": self.severity, "code": self.code,
                "diagnostics": self.diagnostics, "details": self.details,
                "expression": list(self.expression)}

    def words(self) -> str:
        """Its parts free of patient data, e.g. ``error code-invalid at Patient.gender``."""
        where = f" at {', '.join(self.expression)}" if self.expression else ""
        return f"{self.severity or '?'} {self.code or '?'}{where}"


def issues(body: bytes) -> list[Issue]:
    """The issues of an OperationOutcome body, at most MAX_ISSUES; [] for any other body
    (not JSON, cut short, another resource)."""
    try:
        outcome = json.loads(body)
    except (ValueError, RecursionError):
        return []
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return []
    found = outcome.get("issue")
    return [_issue(each) for each in (found if isinstance(found, list) else [])
            if isinstance(each, dict)][:MAX_ISSUES]


def issue_codes(body: bytes) -> list[str]:
    """The distinct issue codes of an OperationOutcome body, in order, at most MAX_CODES."""
    codes: list[str] = []
    for issue in issues(body):
        if issue.code is not None and issue.code not in codes:
            codes.append(issue.code)
    return codes[:MAX_CODES]


def expressions(found: list[Issue]) -> list[str]:
    """The distinct element paths the issues name, in order."""
    paths: list[str] = []
    for issue in found:
        paths.extend(path for path in issue.expression if path not in paths)
    return paths[:MAX_CODES]


def log_words(found: list[Issue]) -> str:
    """The issues for a log line: ``error code-invalid at Patient.gender; ...``."""
    return "; ".join(issue.words() for issue in found)


def _issue(raw: dict[str, Any]) -> Issue:
    expression = raw.get("expression")
    details = raw.get("details")
    return Issue(
        severity=_word(raw.get("severity")),
        code=_word(raw.get("code")),
        expression=tuple(path for path in (expression if isinstance(expression, list) else [])
                         if isinstance(path, str) and _PATH.fullmatch(path)),
        diagnostics=_text(raw.get("diagnostics")),
        details=_text(details.get("text")) if isinstance(details, dict) else None,
    )


def _word(value: object) -> str | None:
    return value if isinstance(value, str) and _CODE.fullmatch(value) else None


def _text(value: object) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) and value else None
