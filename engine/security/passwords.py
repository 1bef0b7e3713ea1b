"""Console passwords, kept only as argon2id hashes (memory-hard, so a stolen table is
slow to guess at). argon2-cffi's defaults follow RFC 9106's second recommendation."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from engine.errors import SwitchboardError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # refused before hashing, so a huge password cannot tie up a worker

_hasher = PasswordHasher()
# Verified against when the user is unknown or has no password, so a refusal takes as
# long whether or not the name exists.
_DECOY = _hasher.hash("switchboard decoy password, never a user's")


class PasswordRefused(SwitchboardError):
    """A new password that may not be set."""


def check_new(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordRefused(f"the password is shorter than {MIN_LENGTH} characters",
                              hint="Use a passphrase of several words")
    if len(password) > MAX_LENGTH:
        raise PasswordRefused(f"the password is longer than {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_new(password)
    return _hasher.hash(password)


def rehash(password: str) -> str:
    """A fresh hash of a password already accepted, under today's parameters."""
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; as slow for no stored hash as for a
    wrong password."""
    if len(password) > MAX_LENGTH or not password:
        return False
    try:
        return _hasher.verify(stored or _DECOY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
