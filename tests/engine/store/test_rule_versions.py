"""The running rule-set version: a newer published version is picked up, at most
``recheck_after`` seconds late, and the store is not asked on every call."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.journal import now_utc
from engine.rule_versions import RuleSetCache, bootstrap
from engine.store.migrate import upgrade
from engine.store.models import RuleSetVersion

ROOT = Path(__file__).resolve().parents[3]


def publish_copy_of_version_1(engine) -> None:
    with Session(engine) as session, session.begin():
        first = session.scalars(select(RuleSetVersion).where(RuleSetVersion.version == 1)).one()
        session.add(RuleSetVersion(
            version=2, status="published", parent_id=first.id, author="ana",
            approver="abe", content=first.content, content_hash=first.content_hash,
            created_at=now_utc(), published_at=now_utc()))


def test_a_newer_version_is_picked_up_once_the_recheck_is_due(engine):
    upgrade(engine)
    bootstrap(engine, ROOT)
    eager, patient = RuleSetCache(engine, recheck_after=0), RuleSetCache(engine, 3600)
    assert eager.current().version == patient.current().version == 1
    publish_copy_of_version_1(engine)
    assert eager.current().version == 2
    assert patient.current().version == 1  # checked less than an hour ago
