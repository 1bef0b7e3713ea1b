"""Change control over rule-set versions: drafts, review, four-eyes approval behind
gates, atomic publish, rollback, impact previews and diffs. The REST API and the
command line both act through :class:`ChangeControl`; who may do what from which
state is engine.rules.lifecycle's to say.

Every change checks the version's state and makes the change in one transaction that
holds the audit chain's lock from its start, with its audit event (who, what, the
content hash before and after, and why): a change without its audit event cannot be
committed, and two people acting at once are serialised. A publish is one transaction
too: the version it replaces is superseded in it, and on PostgreSQL the running
engines are told at commit (engine.rule_versions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, aliased

from engine.impact_preview import preview_state, request_preview
from engine.journal import now_utc
from engine.queues import Invalid, NotFound, Page, Unfit, check_page, iso
from engine.rule_versions import announce_published
from engine.rules import lifecycle
from engine.rules.export import content_problems
from engine.rules.gates import PREVIEW, Gate, failed, source_gates
from engine.rules.lifecycle import Conflict
from engine.rules.snapshot import content_hash, from_content
from engine.rules.source import RuleSource
from engine.rules.version_diff import diff_contents
from engine.security.audit import AuditLog
from engine.security.identity import Principal
from engine.store.database import reader
from engine.store.models import AuditEvent, CatalogConnection, ImpactPreview, RuleSetVersion

Change = Callable[[dict[str, Any]], dict[str, Any]]


class ChangeControl:
    """The rule-set versions in the store behind ``engine``."""

    def __init__(self, engine: Engine, audit: AuditLog | None = None) -> None:
        self._engine = engine
        self._reads = reader(engine)
        self._audit = audit or AuditLog(engine)

    # ---- reading -----------------------------------------------------------------------

    def history(self, status: str | None = None, page: int = 1, per_page: int = 50) -> Page:
        """Versions, newest first, optionally of one status."""
        check_page(page, per_page)
        if status and status not in lifecycle.STATES:
            raise Invalid(f"unknown status {status!r}",
                          hint=f"Use one of: {', '.join(lifecycle.STATES)}")
        query = select(RuleSetVersion)
        if status:
            query = query.where(RuleSetVersion.status == status)
        with Session(self._reads) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            parent = aliased(RuleSetVersion)
            rows = session.execute(
                query.add_columns(parent.version)
                .outerjoin(parent, parent.id == RuleSetVersion.parent_id)
                .order_by(RuleSetVersion.version.desc())
                .limit(per_page).offset((page - 1) * per_page)).all()
            # The parent's number comes in the same query, and every listed version's
            # editors in one more: no query per listed version.
            editors = _editors(session, [row for row, _number in rows])
            return Page([_view(row, number, editors[row.version]) for row, number in rows],
                        page, per_page, total)

    def show(self, version: int) -> dict[str, Any]:
        with Session(self._reads) as session:
            return _summary(session, _version(session, version))

    def content(self, version: int | None = None) -> dict[str, Any]:
        """A version's content; the published one when ``version`` is None."""
        with Session(self._reads) as session:
            row = _version(session, version) if version is not None else _published(session)
            return dict(row.content)

    def diff(self, before: int, after: int) -> dict[str, Any]:
        with Session(self._reads) as session:
            old, new = _version(session, before), _version(session, after)
            return {"from": before, "to": after,
                    "changes": diff_contents(old.content, new.content).as_dict()}

    def gates(self, version: int) -> list[dict[str, Any]]:
        with Session(self._reads) as session:
            return [gate.as_dict() for gate in _gates(session, _version(session, version))]

    def preview(self, preview_id: int) -> dict[str, Any]:
        with Session(self._reads) as session:
            if session.get(ImpactPreview, preview_id) is None:
                raise NotFound(f"no impact preview {preview_id}")
            return preview_state(session, preview_id)

    def latest_preview(self, version: int) -> dict[str, Any] | None:
        """The version's most recently requested impact preview; None before any."""
        with Session(self._reads) as session:
            row = _version(session, version)
            found = session.scalar(select(ImpactPreview.id).where(
                ImpactPreview.rule_set_version_id == row.id)
                .order_by(ImpactPreview.id.desc()).limit(1))
            return preview_state(session, found) if found is not None else None

    # ---- drafts ------------------------------------------------------------------------

    def create_draft(self, actor: Principal, summary: str, parent: int | None = None,
                     content: dict[str, Any] | None = None,
                     change: Change | None = None) -> dict[str, Any]:
        """A new draft: ``content`` (an import), or a copy of ``parent`` (by default
        the published version), with ``change`` made to it (a template filled in). A
        fix of a rejected version names it as its parent."""
        lifecycle.check_role("create drafts of", actor.roles, lifecycle.AUTHOR_ROLES)
        summary = _required(summary, "summary", "say what the change is for")
        if content is not None:
            _readable(content)
        with self._changing() as session:
            base = _version(session, parent) if parent is not None else _published(session)
            body = content if content is not None else base.content
            if change is not None:
                body = change(dict(body))
                try:
                    _readable(body)
                except Invalid as error:
                    # A template filled in on what the parent holds (a file it has
                    # already): the parent's content decides, so Unfit.
                    raise Unfit(error.reason, hint=error.hint) from None
            moment = now_utc()
            row = RuleSetVersion(
                version=_next_number(session), status=lifecycle.DRAFT, parent_id=base.id,
                author=actor.name, content=body, content_hash=content_hash(body),
                summary=summary, created_at=moment, updated_at=moment)
            session.add(row)
            session.flush()
            self._record(session, actor, "rules.draft", row, base.content_hash,
                         summary, {"parent": base.version})
            return _summary(session, row)

    def edit(self, version: int, actor: Principal, content: dict[str, Any] | None = None,
             summary: str | None = None) -> dict[str, Any]:
        """Replace a draft's content or summary; its content hash follows."""
        return self._edit(version, actor, None if content is None else lambda _old: content,
                          summary)

    def put_document(self, version: int, actor: Principal, path: str, kind: str,
                     data: Any) -> dict[str, Any]:
        """Add or replace one document of a draft."""

        def change(content: dict[str, Any]) -> dict[str, Any]:
            documents = [d for d in content["documents"] if d["path"] != path]
            documents.append({"path": path, "kind": kind, "data": data})
            return {**content, "documents": sorted(documents, key=lambda d: str(d["path"]))}

        return self._edit(version, actor, change, None)

    def change(self, version: int, actor: Principal, change: Change) -> dict[str, Any]:
        """Apply ``change`` to a draft's content as read in the same transaction (a
        rule test saved from the test panel adds its document and its message file)."""
        return self._edit(version, actor, change, None)

    def delete_document(self, version: int, actor: Principal, path: str) -> dict[str, Any]:
        def change(content: dict[str, Any]) -> dict[str, Any]:
            kept = [d for d in content["documents"] if d["path"] != path]
            if len(kept) == len(content["documents"]):
                raise NotFound(f"version {version} has no document {path}")
            return {**content, "documents": kept}

        return self._edit(version, actor, change, None)

    def _edit(self, version: int, actor: Principal, change: Change | None,
              summary: str | None) -> dict[str, Any]:
        """Read, change and store a draft in one transaction: two edits at once cannot
        lose one another."""
        with self._changing() as session:
            row = _version(session, version)
            lifecycle.check("edit", row.status, version, actor.name, actor.roles, row.author)
            before = row.content_hash
            if change is not None:
                content = change(dict(row.content))
                _readable(content)
                row.content, row.content_hash = content, content_hash(content)
            if summary is not None:
                row.summary = _required(summary, "summary", "say what the change is for")
            row.updated_at = now_utc()
            self._record(session, actor, "rules.edit", row, before, row.summary)
            return _summary(session, row)

    def delete_draft(self, version: int, actor: Principal) -> dict[str, Any]:
        """Remove a draft and its impact previews; its audit events stay. A draft another
        version was started from stays too: that version's history names it."""
        with self._changing() as session:
            row = _version(session, version)
            lifecycle.check("delete", row.status, version, actor.name, actor.roles, row.author)
            children = session.scalars(select(RuleSetVersion.version).where(
                RuleSetVersion.parent_id == row.id)).all()
            if children:
                raise Conflict(f"version {version} is the parent of version "
                               f"{', '.join(map(str, children))}: it cannot be deleted",
                               hint="Delete the drafts started from it first")
            summary = _summary(session, row)
            self._record(session, actor, "rules.delete", row, row.content_hash, row.summary,
                         {"parent": summary["parent"]})
            session.execute(delete(ImpactPreview).where(
                ImpactPreview.rule_set_version_id == row.id))
            session.delete(row)
            return {**summary, "status": lifecycle.DELETED}

    # ---- review ------------------------------------------------------------------------

    def submit(self, version: int, actor: Principal) -> dict[str, Any]:
        return self._transition("submit", version, actor, None)

    def approve(self, version: int, actor: Principal,
                reason: str | None = None) -> dict[str, Any]:
        return self._transition("approve", version, actor, reason)

    def reject(self, version: int, actor: Principal, reason: str) -> dict[str, Any]:
        reason = _required(reason, "reason", "tell the author what to fix")
        return self._transition("reject", version, actor, reason)

    def publish(self, version: int, actor: Principal) -> dict[str, Any]:
        return self._transition("publish", version, actor, None)

    def _transition(self, action: str, version: int, actor: Principal,
                    reason: str | None) -> dict[str, Any]:
        with self._changing() as session:
            row = _version(session, version)
            target = lifecycle.check(action, row.status, version, actor.name, actor.roles,
                                     row.author, _editors(session, [row])[row.version])
            moment = now_utc()
            if action == "approve":
                _require_gates(session, row)
                row.approver, row.approved_at, row.review_note = actor.name, moment, reason
            elif action == "reject":
                row.rejected_by, row.rejected_at, row.review_note = actor.name, moment, reason
            elif action == "submit":
                row.submitted_at = moment
            before: str | None = row.content_hash
            if action == "publish":
                before = _go_live(session, row, actor.name, moment)
            row.status, row.updated_at = target, moment
            self._record(session, actor, f"rules.{action}", row, before, reason)
            return _summary(session, row)

    def rollback(self, to_version: int, actor: Principal, reason: str) -> dict[str, Any]:
        """Publish an earlier published version's content again, as a new revision."""
        lifecycle.check_role("roll back", actor.roles, lifecycle.ROLLBACK_ROLES)
        reason = _required(reason, "reason", "say why the published rules must go")
        with self._changing() as session:
            earlier = _version(session, to_version)
            current = _published(session)
            if earlier.published_at is None:
                raise Conflict(f"version {to_version} was never published",
                               hint="Roll back to a version that was published before")
            if earlier.id == current.id:
                raise Conflict(f"version {to_version} is the published version already",
                               hint="Roll back to an earlier published version")
            moment = now_utc()
            row = RuleSetVersion(
                version=_next_number(session), status=lifecycle.APPROVED,
                parent_id=current.id, author=actor.name, approver=actor.name,
                content=earlier.content, content_hash=earlier.content_hash,
                summary=f"rollback to version {to_version}: {reason}", created_at=moment,
                approved_at=moment, restores_version=to_version)
            session.add(row)
            session.flush()
            before = _go_live(session, row, actor.name, moment)
            row.status, row.updated_at = lifecycle.PUBLISHED, moment
            self._record(session, actor, "rules.rollback", row, before, reason,
                         {"restores": to_version, "replaces": current.version})
            return _summary(session, row)

    # ---- previews ----------------------------------------------------------------------

    def request_preview(self, version: int, actor: Principal,
                        selection: dict[str, Any]) -> dict[str, Any]:
        lifecycle.check_role("preview", actor.roles,
                             lifecycle.AUTHOR_ROLES | lifecycle.OVERRIDE_ROLES)
        with self._changing() as session:
            row = _version(session, version)
            preview = request_preview(session, row, selection, actor.name)
            session.flush()
            self._record(session, actor, "rules.preview", row, row.content_hash, None,
                         {"preview": preview.id, "selection": preview.selection})
            return preview_state(session, preview.id)

    def override_preview(self, preview_id: int, actor: Principal,
                         reason: str) -> dict[str, Any]:
        """Let an empty preview count for the gate: an approver's recorded decision."""
        lifecycle.check_role("override previews of", actor.roles, lifecycle.OVERRIDE_ROLES)
        reason = _required(reason, "reason", "say why no traffic is acceptable")
        with self._changing() as session:
            preview = session.get(ImpactPreview, preview_id)
            if preview is None:
                raise NotFound(f"no impact preview {preview_id}")
            if preview.status != "done" or preview.journal_messages + preview.test_messages:
                raise Conflict(f"impact preview {preview_id} is {preview.status} with "
                               f"{preview.journal_messages + preview.test_messages} messages",
                               hint="Only a finished preview that replayed no message "
                                    "needs an override")
            preview.overridden_by, preview.override_reason = actor.name, reason
            row = session.get_one(RuleSetVersion, preview.rule_set_version_id)
            self._record(session, actor, "rules.preview_override", row, row.content_hash,
                         reason, {"preview": preview_id})
            return preview_state(session, preview_id)

    # ---- plumbing ----------------------------------------------------------------------

    @contextmanager
    def _changing(self) -> Iterator[Session]:
        with Session(self._engine) as session, session.begin():
            self._audit.lock(session)
            yield session

    def _record(self, session: Session, actor: Principal, action: str, row: RuleSetVersion,
                before: str | None, reason: str | None,
                detail: dict[str, Any] | None = None) -> None:
        session.flush()
        self._audit.record(session, actor.name, action, "rule_set_version", str(row.version),
                           {"status": row.status, **(detail or {})}, before_hash=before,
                           after_hash=row.content_hash, reason=reason)


def _go_live(session: Session, row: RuleSetVersion, actor: str, moment: datetime) -> str | None:
    """Supersede the published version and make ``row`` the one engines run, in the
    caller's transaction; the content hash that was live before."""
    current = session.scalars(select(RuleSetVersion).where(
        RuleSetVersion.status == lifecycle.PUBLISHED).with_for_update()).all()
    for old in current:
        old.status, old.superseded_at, old.updated_at = lifecycle.SUPERSEDED, moment, moment
    row.published_at, row.published_by = moment, actor
    for doc in from_content(row.content).of_kind("connection"):
        session.add(CatalogConnection(rule_set_version_id=row.id,
                                      connection_id=str(doc.data["id"]), document=doc.data))
    session.flush()
    announce_published(session.connection(), row.version)
    return current[0].content_hash if current else None


def _require_gates(session: Session, row: RuleSetVersion) -> None:
    blocked = failed(_gates(session, row))
    if blocked:
        names = ", ".join(gate.name for gate in blocked)
        raise GatesFailed(blocked, f"version {row.version} cannot be approved: the "
                          f"{names} gate{'s' if len(blocked) > 1 else ''} failed",
                          hint="Fix the findings in a new draft, or run the impact preview")


class GatesFailed(Conflict):
    """Approval refused: the gates named did not pass (HTTP 409, with the findings)."""

    def __init__(self, gates: list[Gate], message: str, *, hint: str) -> None:
        self.gates = gates
        super().__init__(message, hint=hint)


def _gates(session: Session, row: RuleSetVersion) -> list[Gate]:
    return [*source_gates(_source(row.content)), _preview_gate(session, row)]


def _preview_gate(session: Session, row: RuleSetVersion) -> Gate:
    published = _published(session)
    previews = session.scalars(select(ImpactPreview).where(
        ImpactPreview.rule_set_version_id == row.id,
        ImpactPreview.content_hash == row.content_hash,
        ImpactPreview.status == "done").order_by(ImpactPreview.id.desc())).all()
    if not previews:
        return Gate(PREVIEW, False, ("no impact preview of this content yet: start one "
                                     "under Impact preview on the version's review page",),
                    waiting=True)
    for preview in previews:
        used = preview.journal_messages + preview.test_messages
        if preview.baseline_version == published.version and (used or preview.overridden_by):
            return Gate(PREVIEW, True)
    latest = previews[0]
    if latest.baseline_version != published.version:
        return Gate(PREVIEW, False, (
            f"impact preview {latest.id} compared with version {latest.baseline_version}, "
            f"but version {published.version} is published now: run it again",),
            waiting=True)
    return Gate(PREVIEW, False, (f"impact preview {latest.id} replayed no message: an "
                                 "approver must override it, with a reason",))


def _source(content: dict[str, Any]) -> RuleSource:
    return from_content(content)


def _readable(content: dict[str, Any]) -> None:
    """Refuse content that is not a configuration at all, or that an export could not
    write as files and read back unchanged (the gates judge the rest)."""
    try:
        from_content(content)
        problems = content_problems(content)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise Invalid(f"the content is not a rule-set configuration ({type(error).__name__}: "
                      f"{error})", hint='Send {"documents": [{"path", "kind", "data"}, ...], '
                      '"concept_maps": {...}, "files": {...}}, as `rules export` writes it '
                      "and `rules import` reads it") from None
    if problems:
        raise Invalid(f"the content could not be exported as files: {'; '.join(problems)}",
                      hint="Keep every file under rules/ or catalog/, in the folder of its "
                           "kind, as `rules export` writes them")


def _version(session: Session, version: int) -> RuleSetVersion:
    row = session.scalars(select(RuleSetVersion).where(RuleSetVersion.version == version)).first()
    if row is None:
        raise NotFound(f"no rule-set version {version}",
                       hint="See `switchboard rules history` for the versions")
    return row


def _published(session: Session) -> RuleSetVersion:
    row = session.scalars(select(RuleSetVersion).where(
        RuleSetVersion.status == lifecycle.PUBLISHED)
        .order_by(RuleSetVersion.version.desc())).first()
    if row is None:
        raise NotFound("no published rule-set version",
                       hint="Start Switchboard once: it publishes the shipped rules")
    return row


def _next_number(session: Session) -> int:
    return int(session.scalar(select(func.max(RuleSetVersion.version))) or 0) + 1


def _required(value: str | None, name: str, why: str) -> str:
    if value is None or not value.strip():
        raise Invalid(f"a {name} is required", hint=f"Send a {name}: {why}")
    return value.strip()


def _summary(session: Session, row: RuleSetVersion) -> dict[str, Any]:
    parent = (session.scalar(select(RuleSetVersion.version)
                             .where(RuleSetVersion.id == row.parent_id))
              if row.parent_id is not None else None)
    return _view(row, parent, _editors(session, [row])[row.version])


def _editors(session: Session, rows: list[RuleSetVersion]) -> dict[int, list[str]]:
    """Per version: its author, then everyone else who changed its content, in the
    order they first did, read from the audit trail (which holds every change with its
    actor and its hashes before and after). A new summary alone changes no content."""
    editors = {row.version: [row.author] for row in rows}
    if not rows:
        return editors
    changes = session.execute(
        select(AuditEvent.target_id, AuditEvent.actor)
        .where(AuditEvent.target_type == "rule_set_version",
               AuditEvent.target_id.in_([str(row.version) for row in rows]),
               AuditEvent.action == "rules.edit",
               AuditEvent.before_hash != AuditEvent.after_hash)
        .order_by(AuditEvent.id))
    for target, actor in changes:
        names = editors[int(target or 0)]
        if actor not in names:
            names.append(actor)
    return editors


def _view(row: RuleSetVersion, parent: int | None, editors: list[str]) -> dict[str, Any]:
    return {
        "version": row.version, "status": row.status, "summary": row.summary,
        "author": row.author, "editors": editors, "created_at": iso(row.created_at),
        "parent": parent,
        "content_hash": row.content_hash, "updated_at": iso(row.updated_at),
        "submitted_at": iso(row.submitted_at), "approver": row.approver,
        "approved_at": iso(row.approved_at), "rejected_by": row.rejected_by,
        "rejected_at": iso(row.rejected_at), "review_reason": row.review_note,
        "published_by": row.published_by, "published_at": iso(row.published_at),
        "superseded_at": iso(row.superseded_at), "restores_version": row.restores_version,
    }
