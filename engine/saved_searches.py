"""Saved searches: a user's named message-log queries, each the parameters the REST API
and engine.message_log take (checked as a search would check them when saved).

Each user sees, saves and deletes only their own; names are unique per user. Every
change is audited in its own transaction, holding the audit chain's lock from its start,
so two saves of one name are serialised. The audit event names the search by id and its
parameters by name only: a value may be a patient's identifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.indexed_paths import IndexedPaths
from engine.journal import now_utc
from engine.message_log import checked_query
from engine.queues import Forbidden, Invalid, NotFound, Refused
from engine.security.audit import AuditLog
from engine.security.identity import Principal
from engine.security.permissions import may, refusal
from engine.store.database import reader
from engine.store.models import SavedSearch

NAME_LENGTH = 100
_READ = "message.read"


class SavedSearches:
    """The saved searches in the store behind ``engine``; every method acts for
    ``owner`` alone, who must be allowed to read the message log."""

    def __init__(self, engine: Engine, audit: AuditLog | None = None,
                 indexed: IndexedPaths | None = None) -> None:
        self._engine = engine
        self._reads = reader(engine)
        self._audit = audit or AuditLog(engine)
        self._indexed = indexed or IndexedPaths.configured()

    def list(self, owner: Principal) -> list[dict[str, Any]]:
        """``owner``'s saved searches, by name."""
        _check_reader(owner)
        with Session(self._reads) as session:
            return [saved_view(found) for found in session.scalars(
                select(SavedSearch).where(SavedSearch.owner == owner.name)
                .order_by(SavedSearch.name))]

    def get(self, owner: Principal, name: str) -> dict[str, Any]:
        _check_reader(owner)
        with Session(self._reads) as session:
            return saved_view(_named(session, owner, name))

    def save(self, owner: Principal, name: str, query: Mapping[str, Any], *,
             replace: bool = False) -> dict[str, Any]:
        """Keep ``query`` under ``name``; a name ``owner`` has used already is refused,
        unless ``replace`` says to put this query in its place."""
        _check_reader(owner)
        name = _checked_name(name)
        kept = checked_query(query, self._indexed)
        moment = now_utc()
        with Session(self._engine) as session, session.begin():
            self._audit.lock(session)
            found = _find(session, owner, name)
            if found is not None and not replace:
                raise Refused(f"you have a saved search named {name!r} already",
                              hint="Choose another name, or replace that search")
            action = "saved_search.replace" if found is not None else "saved_search.save"
            if found is None:
                found = SavedSearch(owner=owner.name, name=name, created_at=moment)
                session.add(found)
            found.query, found.updated_at = kept, moment
            session.flush()
            self._audit.record(session, owner.name, action, "saved_search", str(found.id),
                               {"filters": sorted(kept)})
            return saved_view(found)

    def delete(self, owner: Principal, name: str) -> None:
        _check_reader(owner)
        with Session(self._engine) as session, session.begin():
            self._audit.lock(session)
            found = _named(session, owner, name)
            self._audit.record(session, owner.name, "saved_search.delete", "saved_search",
                               str(found.id), {"filters": sorted(found.query)})
            session.delete(found)


def saved_view(found: SavedSearch) -> dict[str, Any]:
    return {"id": found.id, "name": found.name, "query": dict(found.query),
            "created_at": found.created_at.isoformat(),
            "updated_at": found.updated_at.isoformat()}


def _check_reader(owner: Principal) -> None:
    if not may(owner.roles, _READ):
        raise Forbidden(refusal(_READ))


def _checked_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > NAME_LENGTH:
        raise Invalid(f"a saved search needs a name of 1 to {NAME_LENGTH} characters",
                      hint="Name it for what it finds, e.g. 'failed lab results'")
    return name


def _find(session: Session, owner: Principal, name: str) -> SavedSearch | None:
    return session.scalars(select(SavedSearch).where(
        SavedSearch.owner == owner.name, SavedSearch.name == name.strip())).first()


def _named(session: Session, owner: Principal, name: str) -> SavedSearch:
    found = _find(session, owner, name)
    if found is None:
        raise NotFound(f"you have no saved search named {name!r}",
                       hint="List your saved searches to see their names")
    return found
