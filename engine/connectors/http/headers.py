"""The headers a catalog entry adds to every request: Authorization from the variable
that ``auth_secret_env`` names, and each of ``headers`` from its own variable.

Values are read from the environment at each send rather than kept in the sink, so
a secret is held no longer than a request; error text names the variable, never its
value.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Final

from engine.connectors import ConnectorError
from engine.connectors.sink import IDEMPOTENCY_HEADER, DeliveryFailed
from engine.rules.catalog_entry import HttpEndpoint
from engine.rules.exception_policy import ErrorClass

__all__ = ["catalog_headers", "check_header_names"]

log = logging.getLogger("switchboard.delivery")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Set by the sinks themselves; a catalog value would contradict the body or the key.
_SINK_HEADERS: Final = frozenset(
    name.lower() for name in ("Content-Type", "Content-Length", "Transfer-Encoding", "Host",
                              "Connection", IDEMPOTENCY_HEADER))


def check_header_names(endpoint: HttpEndpoint, where: str) -> None:
    """Refuse, when the sink is built, header names HTTP cannot carry or the sink sets."""
    for name, _env in endpoint.headers:
        if not _TOKEN.fullmatch(name):
            raise ConnectorError(f"{where}: {name!r} is not an HTTP header name",
                                 hint="Use letters, digits and dashes, e.g. X-Api-Key")
        if name.lower() in _SINK_HEADERS:
            raise ConnectorError(f"{where}: the {name} header is set by the sink",
                                 hint=f"Remove {name} from the catalog entry's headers")


def catalog_headers(endpoint: HttpEndpoint, where: str) -> dict[str, str]:
    """The catalog's headers with their values, read now; a missing variable fails the
    delivery as a configuration error, not retried: the engine must be started again
    with it set."""
    pairs = list(endpoint.headers)
    if endpoint.auth_secret_env is not None:
        pairs.append(("Authorization", endpoint.auth_secret_env))
    return {name: _secret(env, name, where) for name, env in pairs}


def _secret(env: str, header: str, where: str) -> str:
    value = os.environ.get(env, "")
    if not value:
        log.error("a destination's secret variable is not set; its delivery is "
                  "dead-lettered as a configuration error",
                  extra={"where": where, "variable": env, "header": header})
        raise DeliveryFailed(
            ErrorClass.CONFIGURATION,
            f"{where}: the environment variable {env}, which holds the {header} header, "
            "is not set", hint=f"Set {env} in the engine's environment (the catalog names the "
            "variable; the secret itself never goes in the catalog) and restart the engine")
    if any(char in value for char in "\r\n\0"):
        # http.client would refuse it with the value in its message.
        raise DeliveryFailed(
            ErrorClass.CONFIGURATION,
            f"{where}: the environment variable {env} holds a line break, which the "
            f"{header} header cannot carry", hint=f"Set {env} to the header value on one line")
    return value
