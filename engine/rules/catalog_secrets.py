"""Which secrets the catalog names that a process does not have.

The catalog names the environment variable that holds each secret (a destination's
Authorization or other header, an inbound HTTP feed's token), never the secret. A
variable that is unset is a configuration error a person must fix, so lint names it
and the engine and web parts name theirs when they start, before any delivery fails
or any sender is refused for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.rules.catalog_entry import Connection, HttpEndpoint

__all__ = ["MissingSecret", "missing_secrets"]


@dataclass(frozen=True, order=True)
class MissingSecret:
    connection: str
    location: str  # in the catalog entry, e.g. endpoint.auth_secret_env
    variable: str
    purpose: str  # what the value is for, e.g. "its Authorization header"
    direction: str

    def __str__(self) -> str:
        return (f"connection '{self.connection}' names {self.variable} for {self.purpose}, "
                "and this process does not have it set")


def missing_secrets(connections: Iterable[Connection],
                    environ: Mapping[str, str]) -> list[MissingSecret]:
    """Every variable ``connections`` name for a secret that ``environ`` lacks or holds
    empty, sorted by connection."""
    missing = []
    for connection in connections:
        endpoint = connection.endpoint
        if not isinstance(endpoint, HttpEndpoint):
            continue
        wanted: list[tuple[str, str, str]] = []
        if endpoint.auth_secret_env is not None:
            purpose = ("the token its senders present" if connection.direction == "inbound"
                       else "its Authorization header")
            wanted.append(("endpoint.auth_secret_env", endpoint.auth_secret_env, purpose))
        wanted += [(f"endpoint.headers.{name}", variable, f"its {name} header")
                   for name, variable in endpoint.headers]
        missing += [MissingSecret(connection.id, location, variable, purpose,
                                  str(connection.direction))
                    for location, variable, purpose in wanted if not environ.get(variable)]
    return sorted(missing)
