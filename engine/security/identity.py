"""The interface every identity source implements, so the API can trust a caller
without knowing whether the database or LDAP vouched for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from engine.security.roles import Role


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: who they are, what they may do and who said so."""

    name: str
    roles: frozenset[Role]
    source: str


class IdentitySource(Protocol):
    """Something that can turn a presented credential into a :class:`Principal`.

    Contract for ``authenticate_token``:

    - Return a :class:`Principal` only for a credential that is known, not revoked and
      whose user is not disabled, at the moment of the call; otherwise return ``None``.
      Never raise for a bad credential: a caller must not learn *why* it was refused.
    - ``Principal.source`` names the source (``"database"``, ``"ldap"``) for the audit
      trail; ``roles`` is never empty.
    - Never log or store the credential itself; sources compare hashes, not secrets.
    - May raise a :class:`~engine.errors.SwitchboardError` only when the source itself
      is unavailable (the database or directory is down), so the API answers 503 and
      not 401.
    - Must be safe to call from many threads at once, and cheap enough to call on every
      request (no write per request).
    """

    def authenticate_token(self, token: str) -> Principal | None: ...
