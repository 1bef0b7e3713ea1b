"""Exception items grouped by signature (engine.exception_signature), read from the
store. Signatures are not stored: the store groups items by their exact connection,
error class and summary, and the groups whose summaries differ only in masked parts
are merged here. An item filter by signature narrows the search in SQL (the group's
connection, error class and a LIKE made from its pattern) and lets the signature
itself decide, so SQLite's case-blind LIKE and PostgreSQL's exact one agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from engine.exception_signature import Signature, like_pattern, signature_of
from engine.store.models import ExceptionItem

SORTS = ("count", "last_at", "first_at", "connection", "error_class")
_ITEM = ExceptionItem


@dataclass
class Group:
    """One signature's items among those asked about: how many, and their times."""

    signature: Signature
    count: int
    first_at: datetime
    last_at: datetime
    example: str = ""
    """The summary of its latest item: the pattern with what it masks filled in, as
    people read it."""

    def as_dict(self) -> dict[str, Any]:
        return {"signature": self.signature.key, "connection": self.signature.connection,
                "error_class": self.signature.error_class, "pattern": self.signature.pattern,
                "example": self.example, "count": self.count,
                "first_at": self.first_at.isoformat(),
                "last_at": self.last_at.isoformat()}

    def sort_value(self, field: str) -> Any:
        if field in ("connection", "error_class"):
            return getattr(self.signature, field) or ""
        return getattr(self, field)


def groups(session: Session, conditions: Sequence[ColumnElement[bool]]) -> list[Group]:
    """The signatures of the items meeting ``conditions``."""
    rows = session.execute(
        select(_ITEM.connection_id, _ITEM.error_class, _ITEM.summary, func.count(),
               func.min(_ITEM.created_at), func.max(_ITEM.created_at))
        .where(*conditions)
        .group_by(_ITEM.connection_id, _ITEM.error_class, _ITEM.summary))
    found: dict[str, Group] = {}
    for connection, error_class, summary, count, first_at, last_at in rows:
        signature = signature_of(connection, error_class, summary)
        group = found.get(signature.key)
        if group is None:
            found[signature.key] = Group(signature, count, first_at, last_at, summary)
        else:
            group.count += count
            group.first_at = min(group.first_at, first_at)
            if last_at > group.last_at:
                group.last_at, group.example = last_at, summary
    return list(found.values())


def sorted_groups(found: list[Group], sort: str) -> list[Group]:
    """``found`` by ``sort`` (a name in SORTS, ``-`` first for descending); ties by
    connection, error class and pattern, so every store and every call gives the same
    order."""
    field = sort.removeprefix("-")
    readable = sorted(found, key=lambda group: (
        group.signature.connection or "", group.signature.error_class,
        group.signature.pattern, group.signature.key))
    return sorted(readable, key=lambda group: group.sort_value(field),
                  reverse=sort.startswith("-"))


def member_ids(session: Session, conditions: Sequence[ColumnElement[bool]], key: str,
               order: Sequence[Any]) -> list[int]:
    """The ids of the items meeting ``conditions`` whose signature is ``key``, in
    ``order``; none when no such item is among them."""
    signature = next((group.signature for group in groups(session, conditions)
                      if group.signature.key == key), None)
    if signature is None:
        return []
    connection = (_ITEM.connection_id.is_(None) if signature.connection is None
                  else _ITEM.connection_id == signature.connection)
    rows = session.execute(
        select(_ITEM.id, _ITEM.summary)
        .where(*conditions, connection, _ITEM.error_class == signature.error_class,
               _ITEM.summary.like(like_pattern(signature.pattern), escape="\\"))
        .order_by(*order))
    return [item_id for item_id, summary in rows
            if signature_of(signature.connection, signature.error_class, summary).key == key]
