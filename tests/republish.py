"""Publishing a new rule-set version the way a publish does (the version row and, on
PostgreSQL, its announcement in one transaction), for hot-reload tests and the
hot-reload benchmark, until change control has its own publish."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
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
        session.add(RuleSetVersion(
            version=version, status="published", author=author, approver=approver,
            content=first.content, content_hash=first.content_hash, created_at=moment,
            published_at=moment))
        session.flush()
        announce_published(session.connection(), version)
    return now_utc()
