"""What an HTTP status means for a delivery: 2xx delivered; 408, 429 and 5xx worth
retrying; 409 a conflict an analyst resolves; every other status a refusal."""

from __future__ import annotations

import re
from typing import Final

from engine.connectors.http.client import HttpResponse
from engine.connectors.sink import DeliveryFailed
from engine.rules.exception_policy import ErrorClass

__all__ = ["error_class", "raise_for_status"]

_RETRIED: Final = frozenset({408, 429})
# The reason phrase is the server's to fill: keep it only when it reads like one.
_PHRASE: Final = re.compile(r"[A-Za-z][A-Za-z '-]{0,39}")

_HINTS: Final = {
    ErrorClass.TRANSPORT_ERROR: "The destination is failing or busy; the delivery is retried "
    "as its exception policy says, with the same Idempotency-Key",
    ErrorClass.CONFLICT: "The destination holds data that conflicts with this message; "
    "resolve it there, then retry the exception",
    ErrorClass.REJECTED: "The destination refused the message (its answer is not kept: it may "
    "echo patient data); read why in its log, fix the mapping or the data, then retry",
}
_AUTH_HINT: Final = ("The destination refused the credential: check the secret that the "
                     "catalog entry's auth_secret_env names, and the destination's access rules")
_REDIRECT_HINT: Final = "Redirects are not followed: put the final URL in the catalog entry"


def error_class(status: int) -> ErrorClass | None:
    """The error class of a status, or None when the destination took the message."""
    if 200 <= status < 300:
        return None
    if status in _RETRIED or status >= 500:
        return ErrorClass.TRANSPORT_ERROR
    if status == 409:
        return ErrorClass.CONFLICT
    return ErrorClass.REJECTED


def raise_for_status(response: HttpResponse, where: str, detail: str = "") -> None:
    """Return when the status says delivered; otherwise raise DeliveryFailed whose
    reason is the status, ``where`` and ``detail`` (which the caller keeps free of PHI)."""
    kind = error_class(response.status)
    if kind is None:
        return
    phrase = f" {response.reason}" if _PHRASE.fullmatch(response.reason) else ""
    raise DeliveryFailed(kind, f"HTTP {response.status}{phrase} from {where}{detail}",
                         hint=_hint(response.status, kind))


def _hint(status: int, kind: ErrorClass) -> str:
    if status in (401, 403):
        return _AUTH_HINT
    if 300 <= status < 400:
        return _REDIRECT_HINT
    return _HINTS[kind]
