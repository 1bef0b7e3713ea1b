"""Who may do what with exception items and tasks: one table that the REST API, the
command line and the assignee check all read, so their rules cannot drift apart.
Admins may do everything.

Task payloads may hold PHI: only the clinical roles see them (``task.show``).
Operators may list tasks, assign them and complete the notify and work tasks
(escalations are theirs), but never decide a review.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.queues import Invalid
from engine.security.roles import Role
from engine.store.models import User

_CLINICAL = frozenset({Role.CLINICIAN, Role.APPROVER})
_ALLOWED: dict[str, frozenset[Role]] = {
    # The message log: identifiers, statuses and PHI-free reasons.
    "message.read": frozenset({Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE}),
    "exception.read": frozenset({Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE}),
    "exception.assign": frozenset({Role.OPERATOR}),
    "exception.resolve": frozenset({Role.OPERATOR}),
    "exception.retry": frozenset({Role.OPERATOR}),
    # Letting a patient's later messages go on without the one that failed.
    "exception.skip": frozenset({Role.OPERATOR}),
    # Validation exceptions are the analysts': they fix the message and send it again.
    "exception.reprocess": frozenset({Role.OPERATOR, Role.ANALYST}),
    "task.list": _CLINICAL | {Role.OPERATOR},
    "task.show": _CLINICAL,
    "task.assign": _CLINICAL | {Role.OPERATOR},
    "task.approve": _CLINICAL,
    "task.reject": _CLINICAL,
    "task.complete": _CLINICAL | {Role.OPERATOR},
}
ACTIONS = tuple(_ALLOWED)


def roles_for(action: str) -> frozenset[Role]:
    """The roles that may take ``action``, admin included."""
    return _ALLOWED[action] | {Role.ADMIN}


def may(roles: Iterable[Role], action: str) -> bool:
    return bool(set(roles) & roles_for(action))


def refusal(action: str) -> str:
    """What to tell someone whose role may not take ``action``."""
    names = ", ".join(sorted(r.value for r in roles_for(action)))
    return f"your role may not do this ({action}); ask an admin for one of: {names}"


def check_assignee(session: Session, name: str, actions: Iterable[str]) -> None:
    """Refuse an assignee who is not an enabled user allowed to act on the item: work
    handed to a typo or to someone who cannot do it would sit unseen."""
    user = session.execute(select(User.role, User.disabled).where(User.name == name)).first()
    if user is None:
        raise Invalid(f"no such user: {name!r}", hint="Assign to an existing user; "
                      "see `switchboard users list`")
    if user.disabled:
        raise Invalid(f"user {name!r} is disabled", hint="Assign to an enabled user")
    wanted = list(actions)
    if not any(may([Role(user.role)], action) for action in wanted):
        allowed = sorted({r.value for action in wanted for r in roles_for(action)})
        raise Invalid(f"user {name!r} ({user.role}) may not act on this item",
                      hint=f"Assign to a user with one of the roles: {', '.join(allowed)}")
