"""Bearer-token authentication and role checks, on the server, for every API route.
Admins may do everything; other roles only what a route names."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, request

from admin.services import services
from engine.security.identity import Principal
from engine.security.roles import Role

F = TypeVar("F", bound=Callable[..., Any])


def current_principal() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401, description="Send an API token: Authorization: Bearer <token>")
    principal = services().users.authenticate_token(token.strip())
    if principal is None:
        abort(401, description="The token is unknown, revoked or its user is disabled")
    return principal


def require(*roles: Role) -> Callable[[F], F]:
    allowed = frozenset(roles) | {Role.ADMIN}

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if not principal.roles & allowed:
                abort(403, description="Your role may not do this; ask an admin for "
                      f"one of: {', '.join(sorted(r.value for r in allowed))}")
            g.principal = principal
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate
