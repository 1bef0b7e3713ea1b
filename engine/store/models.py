"""The tables of Switchboard's store, one schema for SQLite and PostgreSQL.

Status and kind columns are short strings checked by the application, not database
enums: adding a status must not need a table rewrite on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine import lookup_keys
from engine.store import limits

# Stable constraint names, so migrations can find them again on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Moment(TypeDecorator[datetime]):
    """An instant, stored in UTC on both databases (SQLite has no time zones) and read
    back as an aware UTC datetime. A naive datetime is refused: its instant is unknown."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("store times with a time zone: a naive datetime names no instant")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: Moment()}


# The states of the outbox's partial indexes, as engine.outbox names them.
_UNROUTED_STATES = "status IN ('received', 'routing')"
_BLOCKING_STATES = "status IN ('pending', 'retrying', 'in_flight', 'held')"
_STALLING_STATES = "status IN ('retrying', 'in_flight', 'held')"
_READY = "status = 'pending' AND next_attempt_at IS NULL"


class JournalEntry(Base):
    """One inbound message, committed before it is acknowledged. ``raw`` is kept as
    received (an oversize frame keeps none); ``content_hash`` ignores MSH-7 and framing,
    so a re-send is recognised as a duplicate."""

    __tablename__ = "journal"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    received_at: Mapped[datetime]
    # Columns filled from a message take their lengths from engine.store.limits, which
    # ingest checks first, so that both stores give the same answer.
    source: Mapped[str] = mapped_column(String(limits.SOURCE))
    # hl7v2 or fhir-r4: how the pipeline reads ``raw``.
    format: Mapped[str] = mapped_column(String(16), server_default="hl7v2")
    peer: Mapped[str | None] = mapped_column(String(limits.PEER))
    sending_application: Mapped[str | None] = mapped_column(String(limits.SENDING_APPLICATION))
    sending_facility: Mapped[str | None] = mapped_column(String(limits.SENDING_FACILITY))
    control_id: Mapped[str | None] = mapped_column(String(limits.CONTROL_ID))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    message_type: Mapped[str | None] = mapped_column(String(limits.MESSAGE_TYPE))
    event: Mapped[str | None] = mapped_column(String(limits.EVENT))
    # The key deliveries are kept in order by: the patient's; for a FHIR resource that
    # names no patient identifier, the resource's own, so its versions stay in order.
    patient_key: Mapped[str | None] = mapped_column(String(limits.PATIENT_KEY))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    rule_set_version: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    # True on the first message for its dedupe key. The partial unique index below makes
    # the database, not a check-then-insert race, decide which of two copies is first.
    # (Which version of a FHIR resource is the newest, newest_versions says.)
    is_original: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_journal_dedupe_key", "source", "sending_application", "sending_facility",
              "control_id"),
        Index("uq_journal_original", "source", "sending_application", "sending_facility",
              "control_id", unique=True, sqlite_where=text("is_original"),
              postgresql_where=text("is_original")),
        Index("ix_journal_status_received_at", "status", "received_at"),
        # The message log, newest first, when no lookup key narrows it.
        Index("ix_journal_received_at", "received_at"),
        # The pipeline's queue: the oldest waiting messages, without sorting them all.
        Index("ix_journal_status_id", "status", "id"),
        # A patient's messages, for the API. Not (patient_key) alone: with the rowid
        # after it, SQLite took it for the outbox's probe of a patient's unrouted
        # messages as readily as ix_journal_unrouted, and walked the patient's history.
        Index("ix_journal_patient", "patient_key", "received_at"),
        # A patient's messages still waiting to be routed, which hold up that patient's
        # later deliveries (engine.outbox's UNROUTED): only those messages are in it.
        Index("ix_journal_unrouted", "patient_key", "id",
              sqlite_where=text(_UNROUTED_STATES), postgresql_where=text(_UNROUTED_STATES)),
    )


class MessageLookup(Base):
    """A key a journaled message is found under (engine.lookup_keys): its control id and
    patient, written with the journal entry, and the values at the indexed HL7 paths,
    written when the pipeline parses it. ``received_at`` is the message's, so that a
    search walks one index in the order it lists and stops at its page."""

    __tablename__ = "message_lookups"
    journal_id: Mapped[int] = mapped_column(ForeignKey("journal.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(lookup_keys.KIND_LENGTH), primary_key=True)
    key: Mapped[str] = mapped_column(String(lookup_keys.KEY_LENGTH), primary_key=True)
    received_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_message_lookups_search", "kind", "key", "received_at", "journal_id"),
        # Small rows read by key: on SQLite the primary key is the table.
        {"sqlite_with_rowid": False},
    )


class NewestVersion(Base):
    """The newest version of each FHIR resource a source sent under its ``Type/id``:
    the journal entry that holds it, its content hash and the version it says it is.
    A writer replaces the row only where it still names the version that writer read
    (compare and set) and inserts the first under the primary key, so two versions
    journaled at once by two processes cannot both become the newest."""

    __tablename__ = "newest_versions"
    source: Mapped[str] = mapped_column(String(limits.SOURCE), primary_key=True)
    control_id: Mapped[str] = mapped_column(String(limits.CONTROL_ID), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36))
    content_hash: Mapped[str] = mapped_column(String(64))
    # meta.versionId (a FHIR id: at most 64 characters) and meta.lastUpdated.
    version_id: Mapped[str | None] = mapped_column(String(limits.VERSION_ID))
    last_updated: Mapped[datetime | None]


class StageEvent(Base):
    """A message moving through one pipeline stage, with the rule-set version used."""

    __tablename__ = "stage_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    journal_id: Mapped[int] = mapped_column(ForeignKey("journal.id"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    rule_set_version: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None]


class Delivery(Base):
    """One delivery intent (the outbox): a minimised payload for one destination.
    ``sequence`` orders deliveries per (destination, patient_key)."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    journal_id: Mapped[int] = mapped_column(ForeignKey("journal.id"), index=True)
    destination: Mapped[str] = mapped_column(String(limits.SOURCE))
    patient_key: Mapped[str | None] = mapped_column(String(limits.PATIENT_KEY))
    sequence: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    payload: Mapped[dict[str, Any]]
    # The payload encoded in the destination's catalog format, sent as it is stored,
    # so a retry sends the same bytes (and the same HL7 control id).
    media_type: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(Text)
    held_by_row: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a retry is due; while in flight, when the claim lapses (its worker died).
    next_attempt_at: Mapped[datetime | None]
    # Which claim holds it while in flight: an outcome counts only under the claim that
    # is still current, so a worker whose lease lapsed cannot undo its successor's.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    # Why the last attempt failed: the policy's error class and a reason without content.
    error_class: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_deliveries_claim", "status", "next_attempt_at"),
        Index("ix_deliveries_order", "destination", "patient_key", "sequence"),
        # The oldest ready deliveries (pending, not parked behind a waiting head), in
        # order, without sorting or walking the parked backlog.
        Index("ix_deliveries_ready", "sequence", "id",
              sqlite_where=text(_READY), postgresql_where=text(_READY)),
        # A chain's deliveries that have not ended, and those of them that keep it
        # standing still: a claim looks a chain up in a few steps, however long its
        # delivered history. The states are engine.outbox's BLOCKING and STALLING.
        Index("ix_deliveries_blocking", "destination", "patient_key", "sequence", "id",
              sqlite_where=text(_BLOCKING_STATES), postgresql_where=text(_BLOCKING_STATES)),
        Index("ix_deliveries_stalling", "destination", "patient_key", "sequence", "id",
              sqlite_where=text(_STALLING_STATES), postgresql_where=text(_STALLING_STATES)),
    )


class ChainHold(Base):
    """A failure that holds its patient's later messages on a connection whose catalog
    entry says ``ordering: strict``: a dead letter (``kind`` delivery) holds the later
    deliveries of its (destination, patient); a message failed in the pipeline (``kind``
    message) holds the later messages of its (source, patient) before routing. Only the
    holds in force are kept: retrying, reprocessing, skipping or resolving the failure's
    exception item ends its hold. ``sequence`` is the failure's place in its chain (the
    delivery's sequence, or the message's journal id); ``journal_id`` the message the
    chain waits for, which becomes an edited copy when one is made."""

    __tablename__ = "chain_holds"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    connection_id: Mapped[str] = mapped_column(String(limits.SOURCE))
    patient_key: Mapped[str] = mapped_column(String(limits.PATIENT_KEY))
    sequence: Mapped[int] = mapped_column(BigInteger)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), unique=True)
    journal_id: Mapped[int] = mapped_column(ForeignKey("journal.id"), index=True)
    created_at: Mapped[datetime]

    __table_args__ = (
        # A claim or a pipeline pass asks, per delivery or message, whether a hold
        # stands earlier in its chain: a few steps of this index, however many wait.
        Index("ix_chain_holds_chain", "kind", "connection_id", "patient_key", "sequence",
              "delivery_id"),
    )


class ConnectionMinute(Base):
    """A connection's throughput in one minute, or one hour once thinned by age
    (``resolution``): messages received (rejected among them), routed, delivered and
    failed, added to by every engine as its counts are flushed, and the deepest outbox
    queue sampled in it (None: not sampled). The connection ``*`` holds only the
    queue depth of the whole outbox. (engine.throughput_rollup writes these rows.)"""

    __tablename__ = "connection_minutes"
    connection_id: Mapped[str] = mapped_column(String(limits.SOURCE), primary_key=True)
    resolution: Mapped[str] = mapped_column(String(8), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(primary_key=True)
    received: Mapped[int] = mapped_column(BigInteger)
    routed: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(BigInteger)
    queue_depth: Mapped[int | None] = mapped_column(BigInteger)

    # Charts read a window of every connection's periods; thinning, the old minutes.
    __table_args__ = (Index("ix_connection_minutes_period", "resolution", "starts_at"),)


class ConnectionMinuteLatency(Base):
    """How many of a connection's deliveries in a period took a latency (receipt to
    delivered) in one bucket of engine.latency_histogram: only buckets that counted
    one are rows."""

    __tablename__ = "connection_minute_latencies"
    connection_id: Mapped[str] = mapped_column(String(limits.SOURCE), primary_key=True)
    resolution: Mapped[str] = mapped_column(String(8), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    deliveries: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_connection_minute_latencies_period", "resolution", "starts_at"),)


class ExceptionItem(Base):
    """A failure someone owns: what failed, its error class, the role that owns it and
    the catalog's recovery procedure. ``detail`` holds no message content, but for what
    a destination answered when it refused a delivery (a FHIR OperationOutcome's issues,
    whose diagnostics may quote the message): shown with the item, never logged."""

    __tablename__ = "exceptions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    journal_id: Mapped[int | None] = mapped_column(ForeignKey("journal.id"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    connection_id: Mapped[str | None] = mapped_column(String(64))
    error_class: Mapped[str] = mapped_column(String(32))
    owner_role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]
    recovery_procedure: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    # The policy's escalation, fixed when the item is raised: still open at
    # ``escalate_at``, the ``escalate_to`` role is told, once (``escalated_at``).
    escalate_at: Mapped[datetime | None]
    escalate_to: Mapped[str | None] = mapped_column(String(16))
    escalated_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_exceptions_status_created_at", "status", "created_at"),)


class Task(Base):
    """Work for a person: a review that holds deliveries, or a notification."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    journal_id: Mapped[int | None] = mapped_column(ForeignKey("journal.id"), index=True)
    queue: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(8))
    row_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    # Set on a task a delivery created: a retried delivery finds it instead of adding one.
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    decided_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_tasks_queue_status", "queue", "status"),)


class RuleSetVersion(Base):
    """One version of the rules and catalog, as documents. Only a draft is editable."""

    __tablename__ = "rule_set_versions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("rule_set_versions.id"))
    author: Mapped[str] = mapped_column(String(64))
    approver: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    # Change control (engine.versions): why it changed, and each step of its review.
    summary: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    rejected_by: Mapped[str | None] = mapped_column(String(64))
    rejected_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    published_by: Mapped[str | None] = mapped_column(String(64))
    superseded_at: Mapped[datetime | None]
    # A rollback's new revision names the earlier published version it restores.
    restores_version: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_rule_set_versions_status", "status"),)


class ImpactPreview(Base):
    """One impact preview of a version's exact content (``content_hash``) against the
    version published when it ran (``baseline_version``), with its progress. The
    report names messages by id and fields by path: it holds no message content."""

    __tablename__ = "impact_previews"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    rule_set_version_id: Mapped[int] = mapped_column(ForeignKey("rule_set_versions.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    baseline_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, done, failed
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The runner's heartbeat: a preview running with no progress for long was left by
    # a process that died, and goes back to the queue.
    progress_at: Mapped[datetime | None]
    # What to replay: {"limit": N} and optionally "since", "until", "source".
    selection: Mapped[dict[str, Any]]
    total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    journal_messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    test_messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    summary: Mapped[dict[str, Any] | None]
    report: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    # An empty preview counts for the gate only with an approver's recorded override.
    overridden_by: Mapped[str | None] = mapped_column(String(64))
    override_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_impact_previews_version_hash", "rule_set_version_id", "content_hash"),
        Index("ix_impact_previews_status", "status", "id"),
    )


class CatalogConnection(Base):
    """A catalog entry as it stood in one rule-set version."""

    __tablename__ = "catalog_connections"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    rule_set_version_id: Mapped[int] = mapped_column(ForeignKey("rule_set_versions.id"))
    connection_id: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]]

    __table_args__ = (UniqueConstraint("rule_set_version_id", "connection_id"),)


class SavedSearch(Base):
    """A user's named message-log search: the filters as the REST API takes them."""

    __tablename__ = "saved_searches"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("owner", "name"),)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # local (a password kept here) or ldap (the directory vouches at each sign-in).
    source: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    # argon2id; None: the user signs in with API tokens only, or through LDAP.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The last TOTP time step accepted, so a code cannot be used twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # An LDAP user's roles beyond ``role``, as their groups gave them at the last sign-in.
    extra_roles: Mapped[list[str] | None] = mapped_column(JSON)
    theme: Mapped[str] = mapped_column(String(16), default="light", server_default="light")
    # How people know them ("Nina Patel, RN"); None: their login name is shown.
    display_name: Mapped[str | None] = mapped_column(String(100))
    # Set when an admin sets their password in the console: they choose their own at
    # their next sign-in, so the password an admin knows does not stay in use.
    password_change_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false())


class ApiToken(Base):
    """An API token, stored only as its hash: the token itself is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A signed-in console user. The browser holds only the session's random token;
    the row is what ends it: sign-out, an idle or absolute timeout, a disabled user."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))
    # second_factor or enrol_second_factor until the TOTP step is done; then signed_in.
    stage: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class SignInAttempt(Base):
    """One sign-in attempt, for the rate limits per user name and per address."""

    __tablename__ = "sign_in_attempts"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index("ix_sign_in_attempts_username", "username", "at"),
                      Index("ix_sign_in_attempts_address", "address", "at"))


class LdapRoleMapping(Base):
    """A directory group whose members hold a Switchboard role."""

    __tablename__ = "ldap_role_mappings"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("group_name", "role"),)


class AuditEvent(Base):
    """Append-only audit trail; each event's hash covers the previous one's."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None]
    # For a change to a versioned thing: its content hash before and after, and why.
    before_hash: Mapped[str | None] = mapped_column(String(64))
    after_hash: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    # A version's editors (four-eyes) and the trail of one thing are read by target.
    # Security events are counted by action, for /metrics and the dashboard.
    __table_args__ = (Index("ix_audit_events_target", "target_type", "target_id", "id"),
                      Index("ix_audit_events_action", "action", "id"))
