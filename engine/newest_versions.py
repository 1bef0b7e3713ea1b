"""The newest version of each FHIR resource a source sent under its ``Type/id``, read
and replaced in the journal writer's transaction.

The first version is inserted under the table's primary key; each later one replaces
the row only where it still names the version the writer read (compare and set). A
writer whose row was replaced or inserted by another process since it looked gets
``NewestMoved`` (or the store's IntegrityError) and looks again: two versions
journaled at once on two engines cannot both become the newest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, and_, or_, select, update

from engine.errors import SwitchboardError
from engine.fhir.versions import Version
from engine.store.models import JournalEntry, NewestVersion

_NEWEST: Table = NewestVersion.__table__  # type: ignore[assignment]
_JOURNAL: Table = JournalEntry.__table__  # type: ignore[assignment]
# Rows looked up in one statement; more keys than this take several.
PER_QUERY = 200

ResourceKey = tuple[str, str]
"""(source connection, ``Type/id`` as the journal files it)"""


class NewestMoved(SwitchboardError):
    """Another writer replaced a resource's newest version since this one read it."""


@dataclass(frozen=True)
class Newest:
    message_id: str
    content_hash: str
    version: Version


@dataclass(frozen=True)
class Replacement:
    """A resource's newest version as a batch leaves it, and the message that was the
    newest when the batch read it (None: there was none)."""

    key: ResourceKey
    read_as: str | None
    newest: Newest


def read_newest(connection: Connection, keys: Iterable[ResourceKey]) -> dict[ResourceKey,
                                                                             Newest]:
    """The newest version stored for each of ``keys`` that has one."""
    ordered = sorted(set(keys))
    found: dict[ResourceKey, Newest] = {}
    for start in range(0, len(ordered), PER_QUERY):
        chunk = ordered[start:start + PER_QUERY]
        rows = connection.execute(select(
            _NEWEST.c.source, _NEWEST.c.control_id, _NEWEST.c.message_id,
            _NEWEST.c.content_hash, _NEWEST.c.version_id, _NEWEST.c.last_updated,
        ).where(or_(*(and_(_NEWEST.c.source == source, _NEWEST.c.control_id == control_id)
                      for source, control_id in chunk))))
        for row in rows:
            found[(row.source, row.control_id)] = Newest(
                row.message_id, row.content_hash, Version(row.version_id, row.last_updated))
    return found


def first_with_content(connection: Connection, key: ResourceKey,
                       content_hash: str) -> str | None:
    """The first message journaled for ``key`` with this content, if any: a version
    sent again (through the journal's dedupe index, then its few rows)."""
    source, control_id = key
    return connection.scalar(
        select(_JOURNAL.c.message_id).where(
            _JOURNAL.c.source == source, _JOURNAL.c.sending_application == "",
            _JOURNAL.c.sending_facility == "", _JOURNAL.c.control_id == control_id,
            _JOURNAL.c.content_hash == content_hash)
        .order_by(_JOURNAL.c.id).limit(1))


def replace_newest(connection: Connection, replacements: Iterable[Replacement]) -> None:
    """Store each resource's new newest version, in key order (two writers' batches
    lock rows in the same order: no deadlock); NewestMoved if one was replaced
    meanwhile, IntegrityError if another writer inserted a first version."""
    for replacement in sorted(replacements, key=lambda r: r.key):
        (source, control_id), newest = replacement.key, replacement.newest
        values = {"message_id": newest.message_id, "content_hash": newest.content_hash,
                  "version_id": newest.version.version_id,
                  "last_updated": newest.version.last_updated}
        if replacement.read_as is None:
            connection.execute(_NEWEST.insert().values(
                source=source, control_id=control_id, **values))
            continue
        replaced = connection.execute(update(_NEWEST).where(
            _NEWEST.c.source == source, _NEWEST.c.control_id == control_id,
            _NEWEST.c.message_id == replacement.read_as).values(**values))
        if replaced.rowcount != 1:
            raise NewestMoved("a resource's newest version was replaced meanwhile",
                              hint="The writer looks again")
