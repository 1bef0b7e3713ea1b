"""Bearer-token authentication and role checks, on the server, for every API route.
Admins may do everything; other roles only what a route names."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, request
from sqlalchemy.orm import Session

from admin.services import services
from engine.security.audit import AuditLog
from engine.security.identity import Principal
from engine.security.roles import Role

F = TypeVar("F", bound=Callable[..., Any])


# A token is visible ASCII (RFC 6750 allows less); anything else, or anything longer
# than any token we issue or a source is sensibly given, is refused before it is looked
# up or compared.
_TOKEN = re.compile(r"[\x21-\x7e]{1,1024}")


def bearer_token(refusal: str) -> str:
    """The request's bearer token; 401 with ``refusal`` when it sends none, another
    scheme, or something that cannot be a token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(token):
        abort(401, description=refusal)
    return token


def current_principal() -> Principal:
    token = bearer_token("Send an API token: Authorization: Bearer <token>")
    principal = services().users.authenticate_token(token)
    if principal is None:
        abort(401, description="The token is unknown, revoked or its user is disabled")
    return principal


def audit_denial(principal: Principal, what: str) -> None:
    """A permission denial is a security event: it goes to the audit trail, which
    /metrics and the dashboard count."""
    engine = services().engine
    with Session(engine) as session, session.begin():
        AuditLog(engine).record(session, principal.name, "access.denied", "api", what[:64],
                                {"path": request.path[:200], "method": request.method})


def require(*roles: Role) -> Callable[[F], F]:
    allowed = frozenset(roles) | {Role.ADMIN}

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if not principal.roles & allowed:
                audit_denial(principal, view.__name__)
                abort(403, description="Your role may not do this; ask an admin for "
                      f"one of: {', '.join(sorted(r.value for r in allowed))}")
            g.principal = principal
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate
