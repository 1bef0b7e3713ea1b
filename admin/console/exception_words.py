"""The exception queue's codes in words people read: an error class says what went
wrong (the code stays beside it, in a title, for whoever reads logs and policies), an
owner role who owns the item, and a recovery procedure its first step."""

from __future__ import annotations

from engine.integration_catalog import recovery_steps

ERROR_WORDS = {
    # engine.rules.exception_policy.ErrorClass; what raises each says what it means.
    "transport_error": "could not connect (down or busy)",  # refused, reset, 5xx, 429
    "timeout": "no answer in time",
    "rejected": "the destination refused it",  # an AR/AE, or a 4xx
    "conflict": "clashes with data already there",  # a 409, or a conflicting copy
    "validation": "the message itself is the problem",  # unreadable, unencodable
    "unknown_patient": "patient not known yet",  # registration usually follows
    "configuration": "set-up problem",  # a secret's variable is not set
}
_TEAMS = {"compliance": "compliance"}


def error_words(code: str | None) -> str:
    """An error class in words; one the engine does not name, its code made readable."""
    if not code:
        return "not known"
    return ERROR_WORDS.get(code, code.replace("_", " "))


def owners(role: str | None) -> str:
    """Who owns an item, by its owner role: "operators"."""
    if not role:
        return "nobody"
    return _TEAMS.get(role, f"{role}s")


BRIEF_STEPS = 3
"""A list shows a procedure of this many steps whole: the step that fits may be any of
them (a short outage needs nothing; a long one needs the second step)."""


def brief_steps(procedure: str | None) -> list[str]:
    """A recovery procedure's steps, whole (as the catalog joins their lines), up to
    BRIEF_STEPS: a list shows every step of a short procedure, not only its first."""
    return recovery_steps(procedure or "")[:BRIEF_STEPS]
