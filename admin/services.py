"""What the web process talks to: the store, the journal, the identity source, the
exception and work queues, the integration catalog and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import Engine

from engine.change_control import ChangeControl
from engine.exception_bulk import BulkActions
from engine.exception_queue import ExceptionQueue
from engine.ingest import Ingestor
from engine.integration_catalog import IntegrationCatalog
from engine.journal import Journal
from engine.message_bulk import MessageBulk
from engine.message_content import MessageContent
from engine.message_log import MessageLog
from engine.reroute import Reroute
from engine.rule_versions import RuleSetCache, exception_owner, source_charset
from engine.rules.draft_templates import TEMPLATES, DraftTemplate, read_templates
from engine.saved_searches import SavedSearches
from engine.security.audit import AuditLog
from engine.security.audit_trail import AuditTrail
from engine.security.ldap_role_mappings import LdapRoleMappings
from engine.security.users import UserStore
from engine.store.database import open_engine, reader
from engine.throughput_rollup import ThroughputRecorder
from engine.trial_rule_sets import TrialRuleSets
from engine.work_queue import WorkQueue

_TEMPLATES = "switchboard.draft_templates"


@dataclass
class Services:
    engine: Engine
    reads: Engine  # the same store, for transactions that only read
    users: UserStore
    ingestor: Ingestor
    rule_sets: RuleSetCache
    exceptions: ExceptionQueue
    tasks: WorkQueue
    versions: ChangeControl
    messages: MessageLog
    rollup: ThroughputRecorder  # what HTTP ingest receives, for the throughput charts
    catalog: IntegrationCatalog
    audit: AuditTrail
    role_mappings: LdapRoleMappings  # directory groups admins map to roles
    bulk: BulkActions  # bulk actions on the exception queue, run on threads of this process
    content: MessageContent  # a message's content, for those who may read it (audited)
    reroute: Reroute  # reprocessing a message under the rules published now
    saved_searches: SavedSearches
    message_bulk: MessageBulk  # bulk reprocessing, run on threads of this process
    trials: TrialRuleSets  # versions compiled for the test panel, by content hash

    @classmethod
    def open(cls, url: str) -> Services:
        engine = open_engine(url, pool_pre_ping=True)
        rule_sets = RuleSetCache(engine)
        journal = Journal(engine, exception_owner(rule_sets), charsets=source_charset(rule_sets))
        audit = AuditLog(engine)
        rollup = ThroughputRecorder(engine)
        exceptions = ExceptionQueue(engine, audit)
        reroute = Reroute(engine, rule_sets, exceptions, audit)
        return cls(
            engine=engine, reads=reader(engine), users=UserStore(engine),
            ingestor=Ingestor(journal, rollup), rule_sets=rule_sets,
            exceptions=exceptions, tasks=WorkQueue(engine, audit),
            versions=ChangeControl(engine, audit), messages=MessageLog(engine),
            rollup=rollup, catalog=IntegrationCatalog(engine),
            audit=AuditTrail(engine, audit), role_mappings=LdapRoleMappings(engine),
            bulk=BulkActions(exceptions, engine, audit), content=MessageContent(engine),
            reroute=reroute, saved_searches=SavedSearches(engine, audit),
            message_bulk=MessageBulk(reroute, engine, audit), trials=TrialRuleSets(engine))

    def close(self) -> None:
        """Finish the bulk job steps under way and write what is kept in memory (token
        uses, throughput counts), then let the connections go."""
        self.bulk.close()
        self.message_bulk.close()
        self.users.close()
        self.rollup.close()
        self.engine.dispose()


def services() -> Services:
    found: Services = current_app.extensions["switchboard"]
    return found


def draft_templates() -> dict[str, DraftTemplate]:
    """The templates under the configuration root's rules/templates, by id: read on
    first use, as they ship with the configuration and change only with it."""
    found: dict[str, DraftTemplate] | None = current_app.extensions.get(_TEMPLATES)
    if found is None:
        root = Path(current_app.config["CONFIG_ROOT"]) / TEMPLATES
        found = {template.id: template for template in read_templates(root)}
        current_app.extensions[_TEMPLATES] = found
    return found
