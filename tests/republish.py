"""Publishing a new rule-set version the way change control's publish does (the old
version superseded, the new row and, on PostgreSQL, its announcement in one
transaction), without its review: the hot-reload tests and benchmark measure pickup,
and a four-eyes review with an impact preview per publish would only slow them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.journal import now_utc
from engine.rule_versions import announce_published
from engine.store.models import RuleSetVersion


def publish_copy(engine: Any, version: int, author: str = "ana",
                 approver: str = "abe") -> datetime:
    """Publish version 1's content again as ``version``; the moment it committed."""
    with Session(engine) as session, session.begin():
        first = session.scalars(select(RuleSetVersion).where(RuleSetVersion.version == 1)).one()
        moment = now_utc()
        session.execute(update(RuleSetVersion).where(RuleSetVersion.status == "published")
                        .values(status="superseded", superseded_at=moment))
        session.add(RuleSetVersion(
            version=version, status="published", author=author, approver=approver,
            content=first.content, content_hash=first.content_hash, created_at=moment,
            published_at=moment))
        session.flush()
        announce_published(session.connection(), version)
    return now_utc()
