"""The audit chain's anchor: its heads, written outside the database as they commit.

The MAC stops anyone without the key from forging events, but cutting the newest events
off, or replacing the chain with an older copy, leaves a chain that verifies. So each
event's ``<id> <hash>`` is also appended to a file once its transaction has committed
(never before: an event rolled back must not be anchored), and verification checks
that every anchored event is still in the table.

Each process appends to its own host's file, so one file may hold only some of the
heads, in any order; every head it holds still vouches for the whole chain before it.
The file is ``$SWITCHBOARD_AUDIT_ANCHOR``, else ``audit-anchor-<database>.log`` in
``$SWITCHBOARD_AUDIT_ANCHOR_DIR`` or the instance folder, where ``<database>`` is a
digest of the database's address: different databases never share an anchor.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

from sqlalchemy import event, inspect
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, SessionTransaction

from engine.store.database import instance_folder
from engine.store.models import AuditEvent

ANCHOR_ENV = "SWITCHBOARD_AUDIT_ANCHOR"
ANCHOR_DIR_ENV = "SWITCHBOARD_AUDIT_ANCHOR_DIR"
# A head as written: anything else (a line torn by a crash) is skipped when read.
HEAD_LINE = re.compile(rb"(\d{1,19}) ([0-9a-f]{64})\n")
_PENDING = "switchboard.audit_anchor.pending"

log = logging.getLogger("switchboard.audit")

Head = tuple[int, str]


class AuditAnchor:
    """An append-only file of chain heads, one ``<event id> <hash>`` line each."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, heads: list[Head]) -> None:
        """Add ``heads`` in one write: O_APPEND places it after every other writer's,
        whole. No fsync: a head lost with a power cut only leaves the anchor holding
        fewer heads, which verification accepts, while an fsync would add a disk flush
        to every audited change."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(f"{event_id} {event_hash}\n" for event_id, event_hash in heads)
        handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(handle, data.encode("ascii"))
        finally:
            os.close(handle)

    def size(self) -> int:
        """Bytes written so far; 0 before the first head."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def heads(self, limit: int) -> Iterator[Head]:
        """The well-formed heads within the file's first ``limit`` bytes, as written."""
        if limit <= 0:
            return
        read = 0
        with self.path.open("rb") as file:
            for line in file:
                read += len(line)
                if read > limit:
                    return
                match = HEAD_LINE.fullmatch(line)
                if match:
                    yield int(match[1]), match[2].decode("ascii")


def default_anchor(url: URL, environ: Mapping[str, str] | None = None) -> AuditAnchor:
    """The anchor of the database at ``url``, as the module docstring describes."""
    environ = os.environ if environ is None else environ
    named = environ.get(ANCHOR_ENV)
    if named:
        return AuditAnchor(Path(named))
    folder = environ.get(ANCHOR_DIR_ENV)
    where = Path(folder) if folder else instance_folder(environ)
    return AuditAnchor(where / f"audit-anchor-{database_digest(url)}.log")


def database_digest(url: URL) -> str:
    """16 hex digits naming the database behind ``url``, whoever connects to it and
    through whichever driver: the URL without password, user, driver or options, and
    with a SQLite file's path made absolute."""
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        database = str(Path(database).resolve())
    address = URL.create(url.get_backend_name(), host=url.host, port=url.port,
                         database=database)
    rendered = address.render_as_string(hide_password=True)
    return hashlib.sha256(rendered.encode("utf-8")).hexdigest()[:16]


def anchor_after_commit(session: Session, anchor: AuditAnchor, audit_event: AuditEvent) -> None:
    """Append ``audit_event``'s head to ``anchor`` once ``session``'s outermost
    transaction commits; forget it if that transaction, or the savepoint it was added
    in, rolls back. ``audit_event`` must be flushed (its id assigned)."""
    pending: list[tuple[AuditAnchor, AuditEvent, Head]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _write_pending)
        event.listen(session, "after_transaction_end", _forget_pending)
    pending.append((anchor, audit_event, (audit_event.id, audit_event.hash)))


def _write_pending(session: Session) -> None:
    # after_commit also fires when a savepoint is released: the outer transaction may
    # still roll back then, so wait for it.
    if session.in_nested_transaction():
        return
    pending: list[tuple[AuditAnchor, AuditEvent, Head]] = session.info[_PENDING]
    by_anchor: dict[AuditAnchor, list[Head]] = defaultdict(list)
    for anchor, audit_event, head in pending:
        # A savepoint rolled back made its new objects transient again.
        if inspect(audit_event).persistent:
            by_anchor[anchor].append(head)
    pending.clear()
    for anchor, heads in by_anchor.items():
        try:
            anchor.append(heads)
        except OSError as exc:
            # The change is committed: failing the caller now would report it undone.
            log.error("audit events %s are committed but not anchored in %s: %s",
                      [event_id for event_id, _hash in heads], anchor.path, exc.strerror)


def _forget_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info[_PENDING].clear()
