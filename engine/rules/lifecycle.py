"""The lifecycle of a rule-set version and who may move it, as pure rules: the store
(engine.change_control) asks here before every transition, so the REST API and the
command line cannot drift apart.

draft → in_review → approved → published → superseded; a version in review (or
approved and not yet published) may be rejected, and stays in the history as
``rejected``: its fix is a new draft whose parent it is. Four-eyes: the approver is
never the author, whatever their role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import SwitchboardError
from engine.security.roles import Role

DRAFT, IN_REVIEW, APPROVED, PUBLISHED = "draft", "in_review", "approved", "published"
SUPERSEDED, REJECTED = "superseded", "rejected"
STATES = (DRAFT, IN_REVIEW, APPROVED, PUBLISHED, SUPERSEDED, REJECTED)
# Not a state a version is kept in: a deleted draft leaves only its audit events.
DELETED = "deleted"


class Forbidden(SwitchboardError):
    """The caller's role, or four-eyes, does not allow the action (HTTP 403)."""


class Conflict(SwitchboardError):
    """The version's state does not allow the action (HTTP 409)."""


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str
    roles: frozenset[Role]
    next_step: str  # what to do instead, when the state is wrong


_AUTHORS = frozenset({Role.ANALYST, Role.ADMIN})
_APPROVERS = frozenset({Role.APPROVER, Role.ADMIN})
TRANSITIONS = {t.action: t for t in (
    Transition("edit", (DRAFT,), DRAFT, _AUTHORS,
               "Only a draft can be edited: create a new draft from this version"),
    Transition("delete", (DRAFT,), DELETED, _AUTHORS,
               "Only a draft can be deleted: a version that was submitted stays in the "
               "history"),
    Transition("submit", (DRAFT,), IN_REVIEW, _AUTHORS,
               "Only a draft can be submitted for review"),
    Transition("approve", (IN_REVIEW,), APPROVED, _APPROVERS,
               "Only a version in review can be approved: submit the draft first"),
    Transition("reject", (IN_REVIEW, APPROVED), REJECTED, _APPROVERS,
               "Only a version in review or approved can be rejected"),
    Transition("publish", (APPROVED,), PUBLISHED, _APPROVERS,
               "Only an approved version can be published: have it approved first"),
)}
ROLLBACK_ROLES = _APPROVERS
OVERRIDE_ROLES = _APPROVERS
AUTHOR_ROLES = _AUTHORS
READ_ROLES = frozenset(Role)


def check(action: str, status: str, version: int, actor: str, roles: Iterable[Role],
          author: str, editors: Iterable[str] = ()) -> str:
    """The state ``action`` leads to from ``status``; Forbidden or Conflict when the
    caller or the state does not allow it. ``editors`` changed the version's content:
    none of them may approve it."""
    transition = TRANSITIONS[action]
    check_role(action, roles, transition.roles)
    if status not in transition.sources:
        raise Conflict(f"version {version} is {status}: it cannot be {_past(action)}",
                       hint=transition.next_step)
    if action == "approve" and actor == author:
        raise Forbidden(f"version {version} is yours: its author may not approve it",
                        hint="Four-eyes: ask another approver to review it")
    if action == "approve" and actor in set(editors):
        raise Forbidden(f"you changed version {version}: no one who changed it may "
                        "approve it", hint="Four-eyes: ask an approver who did not change it")
    if action in ("edit", "delete", "submit") and actor != author and Role.ADMIN not in set(roles):
        raise Forbidden(f"version {version} is {author}'s draft",
                        hint="Create a draft of your own from it, or ask its author")
    return transition.target


def check_role(action: str, roles: Iterable[Role], allowed: frozenset[Role]) -> None:
    if not set(roles) & allowed:
        names = ", ".join(sorted(role.value for role in allowed))
        raise Forbidden(f"your role may not {action} rule-set versions",
                        hint=f"Ask an admin for one of the roles: {names}")


def _past(action: str) -> str:
    return {"edit": "edited", "delete": "deleted", "submit": "submitted", "approve": "approved",
            "reject": "rejected", "publish": "published"}[action]
