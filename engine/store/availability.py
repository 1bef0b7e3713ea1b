"""Whose failure is it: the store's, or one message's?

A store that is down, locked past its timeout or cut off is worth waiting for: the
same work succeeds later, so ingest answers AE and workers retry. Anything else a write
raises (a value the store refuses, text that cannot be encoded, a constraint) fails
the same way every time: retrying it would stop the line behind one message, so that
message is isolated instead.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


def store_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the store cannot be reached or used right now."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError)


def error_name(error: BaseException) -> str:
    """The error's type, and the driver's beneath it: never its text, which can quote
    the values the store refused (message content)."""
    orig = getattr(error, "orig", None)
    return type(error).__name__ + (f"/{type(orig).__name__}" if orig is not None else "")
