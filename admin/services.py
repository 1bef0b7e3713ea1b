"""What the web process talks to: the store, the journal and the identity source."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Engine

from engine.ingest import Ingestor
from engine.journal import Journal
from engine.rule_versions import RuleSetCache, exception_owner
from engine.security.users import UserStore
from engine.store.database import open_engine, reader


@dataclass
class Services:
    engine: Engine
    reads: Engine  # the same store, for transactions that only read
    users: UserStore
    ingestor: Ingestor
    rule_sets: RuleSetCache

    @classmethod
    def open(cls, url: str) -> Services:
        engine = open_engine(url, pool_pre_ping=True)
        rule_sets = RuleSetCache(engine)
        journal = Journal(engine, exception_owner(rule_sets))
        return cls(engine, reader(engine), UserStore(engine), Ingestor(journal), rule_sets)


def services() -> Services:
    found: Services = current_app.extensions["switchboard"]
    return found
