"""Where the probes (/healthz, /readyz, /metrics) are served and who may read /metrics.

With ``HEALTH_PORT`` set, the probes answer only on that port and the API only on the
others, each 404 on the wrong one: the probes can sit on a management network that the
load balancer and Prometheus reach, apart from the API. The port is the one the
connection arrived on (``SERVER_PORT``, set by the server from its listening socket),
never the Host header.

With ``PROBE_TOKEN`` or ``PROBE_TOKEN_FILE`` set, /metrics needs it as a bearer token.
/healthz and /readyz stay open: load balancers' health checks cannot send a secret, and
they say only whether the process lives and can make progress."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, request

from admin.auth import bearer_token
from engine.errors import SwitchboardError

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
HEALTH_PORT = "HEALTH_PORT"
_TOKEN = "switchboard.probe_token"


def install(app: Flask) -> None:
    """Read the token now, so that a bad setting stops the start, not the first scrape;
    keep the probes and the API apart when ``HEALTH_PORT`` is set."""
    app.extensions[_TOKEN] = _configured_token(app.config)
    port = app.config.get(HEALTH_PORT)
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise SwitchboardError(f"SWITCHBOARD_HEALTH_PORT must be a port number, not {port!r}")
    app.before_request(_keep_apart)


def probes_apart(app: Flask) -> bool:
    """Whether the probes have a port of their own, and the API's port does not serve them."""
    return app.config.get(HEALTH_PORT) is not None


def token_configured(app: Flask) -> bool:
    return app.extensions.get(_TOKEN) is not None


def require_probe_token() -> None:
    """401 unless the request carries the configured probe token (none configured: open)."""
    expected: str | None = current_app.extensions.get(_TOKEN)
    if expected is None:
        return
    given = bearer_token("/metrics needs the probe token: Authorization: Bearer <token>")
    # Digests of equal length: the comparison's time says nothing of the token's length.
    if not hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                               hashlib.sha256(expected.encode()).digest()):
        abort(401, description="The probe token is wrong")


def _keep_apart() -> None:
    port = current_app.config.get(HEALTH_PORT)
    if port is None:
        return
    on_probe_port = request.environ.get("SERVER_PORT") == str(port)
    if on_probe_port != (request.path in PROBE_PATHS):
        abort(404)


def _configured_token(config: Any) -> str | None:
    """The token from PROBE_TOKEN or the file PROBE_TOKEN_FILE names (one, not both)."""
    value, file = config.get("PROBE_TOKEN"), config.get("PROBE_TOKEN_FILE")
    if value is not None and file is not None:
        raise SwitchboardError("set SWITCHBOARD_PROBE_TOKEN or SWITCHBOARD_PROBE_TOKEN_FILE, "
                               "not both")
    if file is not None:
        try:
            value = Path(str(file)).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeError) as error:
            raise SwitchboardError(f"SWITCHBOARD_PROBE_TOKEN_FILE {file} cannot be read "
                                   f"({type(error).__name__})") from error
    if value is None:
        return None
    token = str(value).strip()
    # Empty is refused, not taken for unset: a secret that failed to arrive must not
    # open /metrics without a word.
    if not token or not all("\x21" <= c <= "\x7e" for c in token) or len(token) > 1024:
        raise SwitchboardError("the probe token must be 1 to 1024 visible ASCII characters "
                               "(no spaces); unset SWITCHBOARD_PROBE_TOKEN and "
                               "SWITCHBOARD_PROBE_TOKEN_FILE to leave /metrics open")
    return token
