"""API tokens: random, recognisable by their prefix, and stored only as a hash.

The database holds ``sha256(token)``; a token is checked by looking its hash up, so no
secret is ever compared byte by byte and a stolen copy of the database grants nothing.
sha256 without salt is enough here: tokens carry 256 random bits and cannot be guessed
from a dictionary, unlike passwords.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "sb_"
TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh token: ``sb_`` and 32 random bytes in URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The hex sha256 under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
