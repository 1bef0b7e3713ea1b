"""The optional TOTP second factor (RFC 6238, through pyotp): 30-second steps, one step
of clock drift either way, and a step once used is never accepted again."""

from __future__ import annotations

import time

import pyotp

ISSUER = "Switchboard"
STEP_SECONDS = 30


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// address an authenticator app takes (typed in, or as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def accepted_step(secret: str, code: str, last_step: int | None,
                  now: float | None = None) -> int | None:
    """The time step ``code`` is valid for, if it is valid now and later than
    ``last_step``; else None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    moment = time.time() if now is None else now
    totp = pyotp.TOTP(secret)
    current = int(moment // STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        if (last_step is None or step > last_step) and \
                totp.verify(code, for_time=step * STEP_SECONDS):
            return step
    return None


def code_at(secret: str, moment: float) -> str:
    """The code an authenticator shows at ``moment``: for enrolment checks and tests."""
    return pyotp.TOTP(secret).at(moment)
