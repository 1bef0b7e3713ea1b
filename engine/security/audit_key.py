"""The audit chain's MAC key: a secret kept outside the database.

Someone who can write the database but not read this key cannot forge an event the
chain accepts. It comes from ``SWITCHBOARD_AUDIT_KEY`` (text), else from the file named
by ``SWITCHBOARD_AUDIT_KEY_FILE``, else from ``<instance>/audit.key``, which is created
with 32 random bytes on first use. Several hosts writing one PostgreSQL database must be
given the same key (by either variable): each would otherwise make its own.

Losing the key makes every event written with it unverifiable, so the created file is
fsynced with its folder. The key is never logged or printed.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from engine.durable_file import sync_directory
from engine.errors import SwitchboardError
from engine.store.database import instance_folder

KEY_ENV = "SWITCHBOARD_AUDIT_KEY"
KEY_FILE_ENV = "SWITCHBOARD_AUDIT_KEY_FILE"
KEY_FILE_NAME = "audit.key"
MIN_KEY_LENGTH = 32


class AuditKeyError(SwitchboardError):
    """The audit key is missing, too short or cannot be read."""


def audit_key(environ: Mapping[str, str] | None = None, *, create: bool = True) -> bytes:
    """The key that MACs the audit chain, from the environment or the instance folder.

    ``create=False`` is for checking a chain: a key made now could not verify it."""
    environ = os.environ if environ is None else environ
    text = environ.get(KEY_ENV)
    if text is not None:
        if len(text) < MIN_KEY_LENGTH:
            raise AuditKeyError(f"{KEY_ENV} holds {len(text)} characters; the audit key "
                                f"needs at least {MIN_KEY_LENGTH}",
                                hint="Set a longer random secret, the same on every host")
        return text.encode("utf-8")
    named = environ.get(KEY_FILE_ENV)
    if named:
        return _read_key(Path(named))
    return _instance_key(instance_folder(environ) / KEY_FILE_NAME, create)


def _instance_key(path: Path, create: bool) -> bytes:
    if not path.exists():
        if not create:
            raise AuditKeyError(f"no audit key: {path} does not exist",
                                hint=f"Set {KEY_ENV} or {KEY_FILE_ENV} to the key that "
                                     "wrote the chain, or SWITCHBOARD_INSTANCE to its folder")
        _create_key(path)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    """The file's bytes, used as they are (a trailing newline is part of the key)."""
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"cannot read the audit key file {path}: {exc.strerror}",
                            hint=f"Check {KEY_FILE_ENV} and the file's permissions") from exc
    if len(key) < MIN_KEY_LENGTH:
        raise AuditKeyError(f"the audit key file {path} holds {len(key)} bytes; the key "
                            f"needs at least {MIN_KEY_LENGTH}")
    return key


def _create_key(path: Path) -> None:
    """Write a new random key to ``path`` unless another process got there first.

    The key is written whole to a private temporary file (mkstemp: mode 0600) and then
    hard-linked into place: like ``O_EXCL`` the link fails if the file exists (then the
    other process's key is the one used), and unlike ``O_EXCL`` nobody can read the file
    half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(secrets.token_bytes(MIN_KEY_LENGTH))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        sync_directory(path.parent)
    finally:
        os.unlink(temporary)
