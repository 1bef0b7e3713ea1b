"""Who may do what with messages, exception items, the catalog and the audit trail: one
table that the REST API, the command line, the console and the assignee check all read,
so their rules cannot drift apart. Admins may do everything.

Tasks are not here: who may see and act on a task is decided by its queue's catalog
entry (:mod:`engine.security.task_access`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.queues import Unfit
from engine.security.roles import Role
from engine.store.models import User

_ALLOWED: dict[str, frozenset[Role]] = {
    # The message log: identifiers, statuses and PHI-free reasons.
    "message.read": frozenset({Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE}),
    # Routing a message again under the rules published now (engine.reroute).
    "message.reprocess": frozenset({Role.OPERATOR}),
    "exception.read": frozenset({Role.OPERATOR, Role.ANALYST, Role.COMPLIANCE}),
    "exception.assign": frozenset({Role.OPERATOR}),
    "exception.resolve": frozenset({Role.OPERATOR}),
    "exception.retry": frozenset({Role.OPERATOR}),
    # Letting a patient's later messages go on without the one that failed.
    "exception.skip": frozenset({Role.OPERATOR}),
    # Validation exceptions are the analysts': they fix the message and send it again.
    "exception.reprocess": frozenset({Role.OPERATOR, Role.ANALYST}),
    # The integration catalog: connections, owners, scopes and health, no content.
    "catalog.read": frozenset({Role.OPERATOR, Role.ANALYST, Role.APPROVER, Role.COMPLIANCE}),
    # The audit trail (ids and PHI-free details), and checking its chain.
    "audit.read": frozenset({Role.COMPLIANCE}),
    "audit.verify": frozenset({Role.COMPLIANCE}),
    # Users, their tokens and second factors, and the directory groups mapped to roles.
    "user.manage": frozenset(),
}
ACTIONS = tuple(_ALLOWED)


def roles_for(*actions: str) -> frozenset[Role]:
    """The roles that may take any of ``actions``, admin included."""
    return frozenset({Role.ADMIN}).union(*(_ALLOWED[action] for action in actions))


def may(roles: Iterable[Role], action: str) -> bool:
    return bool(set(roles) & roles_for(action))


def refusal(action: str) -> str:
    """What to tell someone whose role may not take ``action``."""
    names = ", ".join(sorted(r.value for r in roles_for(action)))
    return f"your role may not do this ({action}); ask an admin for one of: {names}"


def check_assignee(session: Session, name: str, allowed: frozenset[Role]) -> None:
    """Refuse an assignee who is not an enabled user holding one of the ``allowed``
    roles (those that may act on the item): work handed to a typo or to someone who
    cannot do it would sit unseen."""
    user = session.execute(select(User.role, User.disabled).where(User.name == name)).first()
    if user is None:
        raise Unfit(f"no such user: {name!r}", hint="Assign to an existing user; "
                      "see `switchboard users list`")
    if user.disabled:
        raise Unfit(f"user {name!r} is disabled", hint="Assign to an enabled user")
    if user.role not in allowed:
        raise Unfit(f"user {name!r} ({user.role}) may not act on this item",
                      hint="Assign to a user with one of the roles: "
                           f"{', '.join(sorted(r.value for r in allowed))}")
