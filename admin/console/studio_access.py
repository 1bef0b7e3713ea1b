"""Who may do what in the rule studio, shared by its editors: analysts and admins
change drafts (their own; admins anyone's), approvers read every page, and every
refusal by change control becomes a page that says why."""

from __future__ import annotations

from typing import Any

from flask import abort

from admin.console.access import deny, holds, principal
from admin.services import services
from engine.queues import Invalid, NotFound
from engine.rules import lifecycle
from engine.rules.lifecycle import Conflict, Forbidden
from engine.security.roles import Role


def may_author() -> bool:
    return holds(Role.ANALYST)


def author_only() -> None:
    """Refuse (403, audited) a change by anyone who may only read the studio."""
    if not may_author():
        deny("studio.change")


def may_change(shown: dict[str, Any]) -> None:
    """Refuse a change to a version this user may only read, before checking what they
    sent: 403 (audited) for someone else's draft, 409 for a version past draft."""
    author_only()
    if editable(shown):
        return
    if shown["status"] != lifecycle.DRAFT:
        abort(409, description=f"Version {shown['version']} is {shown['status']}: only a "
                               "draft can be changed. Start a new draft from it")
    deny("studio.change")


def editable(shown: dict[str, Any]) -> bool:
    """Whether this user may change ``shown``: a draft, theirs (or they are an admin)."""
    me = principal()
    return (may_author() and shown["status"] == lifecycle.DRAFT
            and (shown["author"] == me.name or Role.ADMIN in me.roles))


def version_of(version: int) -> dict[str, Any]:
    try:
        return services().versions.show(version)
    except NotFound as error:
        abort(404, description=said(error))


def change_or_refuse(change: Any) -> Any:
    """Make ``change``; a refusal by change control becomes 403 (audited) or a page
    that says why and what to do instead."""
    try:
        return change()
    except Forbidden:
        deny("studio.change")
    except (Conflict, Invalid, NotFound) as error:
        abort(409 if isinstance(error, Conflict) else 400, description=said(error))


def said(error: Exception) -> str:
    """The refusal as a sentence, and what to do next (said once)."""
    text = str(getattr(error, "reason", error)).rstrip(".")
    hint = getattr(error, "hint", None)
    return f"{text[:1].upper()}{text[1:]}." + (f" {hint.rstrip('.')}." if hint else "")
