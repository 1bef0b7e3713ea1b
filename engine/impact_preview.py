"""Impact previews: recent journaled messages replayed through the published version and
a draft, in the background, with the differences kept for review.

A preview is requested as a queued row (``request_preview``, in the caller's
transaction, so the REST API audits the request with it). A ``PreviewRunner`` claims
queued rows one at a time with a conditional UPDATE, so two runners, in one process or
on several machines, never run the same one; it commits its progress every chunk of
messages for clients to poll (``preview_state``), and keeps the summary and a report of
the messages that differ. The report names messages by journal message id (or rule
test file and case) and fields by path: it holds no message content.

When the journal holds fewer messages than asked for, the draft's rule test messages
make up the rest, counted apart from the journal's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, and_, func, select, update
from sqlalchemy.orm import Session

from engine.errors import SwitchboardError
from engine.fhir import read_fhir, to_canonical
from engine.hl7v2 import parse, text_error
from engine.journal import FHIR_R4, now_utc
from engine.model.mapping import Conversion
from engine.model.outcome_event import TASK_OUTCOME, OutcomeEvent
from engine.queues import Invalid, NotFound, aware_moment, iso
from engine.rules.impact import (
    CaseMessage,
    MessageImpact,
    Replayable,
    Tally,
    Unreadable,
    compare,
    rule_test_messages,
    same_mapping,
)
from engine.rules.rule_set import RuleSet, RuleSetError, compile_rule_set
from engine.rules.snapshot import from_content
from engine.rules.source import RuleSource
from engine.store.database import reader
from engine.store.models import ImpactPreview, JournalEntry, RuleSetVersion

log = logging.getLogger("switchboard.impact_preview")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
DEFAULT_LIMIT, MAX_LIMIT = 1000, 100_000
CHUNK = 200
REPORT_CAP = 1000
POLL_SECONDS = 0.5
# A preview 'running' with no progress committed for this long was left by a process
# that died: a live runner commits progress every CHUNK messages, well under a minute.
STALE_AFTER = timedelta(minutes=10)
RECOVER_EVERY = 60.0  # seconds
# Journal rows the pipeline never routes because an earlier copy was: replaying them
# would count that message twice.
_NOT_REPLAYED = ("duplicate",)
_SELECTION_KEYS = frozenset({"limit", "since", "until", "source"})

_JOURNAL: Table = JournalEntry.__table__  # type: ignore[assignment]
_PREVIEWS: Table = ImpactPreview.__table__  # type: ignore[assignment]


class PreviewFailed(SwitchboardError):
    """A preview cannot run; its text is stored as the preview's error."""


class _Released(Exception):
    """The runner is stopping: the preview goes back to the queue for another."""


class _LostClaim(Exception):
    """Another runner took the preview over (this one was thought dead)."""


# ---- requesting and reading -------------------------------------------------------------


def request_preview(session: Session, version: RuleSetVersion, selection: Mapping[str, Any],
                    actor: str) -> ImpactPreview:
    """Queue a preview of ``version``'s current content; Invalid when ``selection`` is
    wrong. Flushed, not committed: the caller's transaction commits it."""
    preview = ImpactPreview(
        rule_set_version_id=version.id, content_hash=version.content_hash, status=QUEUED,
        requested_by=actor, requested_at=now_utc(), selection=check_selection(selection),
        total=0, done=0, journal_messages=0, test_messages=0)
    session.add(preview)
    session.flush()
    return preview


def check_selection(selection: Mapping[str, Any]) -> dict[str, Any]:
    """``selection`` checked and normalised: ``limit`` (1 to 100,000, default 1,000),
    optional ``since`` and ``until`` (ISO 8601 times with an offset; since inclusive,
    until exclusive) and ``source`` (a source connection's id)."""
    unknown = sorted(set(selection) - _SELECTION_KEYS)
    if unknown:
        raise Invalid(f"unknown selection key(s): {', '.join(unknown)}",
                      hint="Select with limit, since, until and source")
    checked: dict[str, Any] = {"limit": _limit(selection.get("limit", DEFAULT_LIMIT))}
    for name in ("since", "until"):
        if selection.get(name) is not None:
            checked[name] = aware_moment(name, selection[name]).isoformat()
    if ("since" in checked and "until" in checked
            and aware_moment("since", checked["since"]) >= aware_moment("until", checked["until"])):
        raise Invalid("since must be before until", hint="Swap them, or widen the window")
    source = selection.get("source")
    if source is not None:
        if not isinstance(source, str) or not source.strip() or len(source) > 64:
            raise Invalid("source must be a connection id (1 to 64 characters)")
        checked["source"] = source.strip()
    return checked


def _limit(value: Any) -> int:
    # JSON has numbers, not integers: 200.0 is the whole number 200.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise Invalid(f"limit must be a whole number from 1 to {MAX_LIMIT:,}",
                      hint=f"Leave it out for the last {DEFAULT_LIMIT:,} messages")
    return value


def preview_state(session: Session, preview_id: int) -> dict[str, Any]:
    """A preview as the API shows it: status, progress, counts, summary and report."""
    preview = session.get(ImpactPreview, preview_id)
    if preview is None:
        raise NotFound(f"no impact preview {preview_id}",
                       hint="Request one for the version first")
    version = session.get(RuleSetVersion, preview.rule_set_version_id)
    return {
        "id": preview.id,
        "rule_set_version_id": preview.rule_set_version_id,
        "version": version.version if version else None,
        "content_hash": preview.content_hash,
        # False once the draft was edited after the request: it previews older content.
        "current": version is not None and version.content_hash == preview.content_hash,
        "baseline_version": preview.baseline_version,
        "status": preview.status,
        "requested_by": preview.requested_by,
        "requested_at": iso(preview.requested_at),
        "started_at": iso(preview.started_at),
        "finished_at": iso(preview.finished_at),
        "selection": preview.selection,
        "progress": {"done": preview.done, "total": preview.total},
        "journal_messages": preview.journal_messages,
        "test_messages": preview.test_messages,
        "summary": preview.summary,
        "report": preview.report,
        "error": preview.error,
        "overridden_by": preview.overridden_by,
        "override_reason": preview.override_reason,
    }


# ---- running ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A preview this runner took, fenced by the start time it wrote: every later
    write names it, so a runner whose claim was recovered cannot overwrite another's."""

    preview_id: int
    started_at: datetime


@dataclass(frozen=True)
class _Plan:
    """What one preview replays, and through which versions."""

    baseline: RuleSet
    draft: RuleSet
    same_mapping: bool  # then each message is converted once, not twice
    baseline_version: int
    selection: dict[str, Any]
    test_messages: list[CaseMessage]

    def compare(self, item: Replayable) -> MessageImpact:
        return compare(self.baseline, self.draft, item, same_mapping=self.same_mapping)


@dataclass
class _Report:
    """The tally of every message, and the entries of those that differ, capped."""

    cap: int
    tally: Tally = field(default_factory=Tally)
    entries: list[dict[str, Any]] = field(default_factory=list)
    truncated: int = 0

    def add(self, name: dict[str, str], impact: MessageImpact) -> None:
        self.tally.add(impact)
        if not impact.changed:
            return
        if len(self.entries) < self.cap:
            self.entries.append({**name, **impact.as_dict()})
        else:
            self.truncated += 1

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.entries, "truncated": self.truncated}


class PreviewRunner:
    """Runs queued previews: ``run_pending`` now, or ``start`` a thread that polls."""

    def __init__(self, engine: Engine, *, poll: float = POLL_SECONDS, chunk: int = CHUNK,
                 report_cap: int = REPORT_CAP, stale_after: timedelta = STALE_AFTER) -> None:
        self._engine = engine
        self._poll = poll
        self._chunk = chunk
        self._report_cap = report_cap
        self._stale_after = stale_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread --

    def start(self) -> None:
        """Put back previews a dead process left running, then poll in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll_forever, name="impact-preview",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """End the thread; a preview it is running goes back to the queue."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _poll_forever(self) -> None:
        recovered_at: float | None = None
        while not self._stop.is_set():
            try:
                # At start, then now and then: an engine that died on another machine
                # leaves its preview running while this one keeps going.
                if recovered_at is None or time.monotonic() - recovered_at >= RECOVER_EVERY:
                    recovered_at = time.monotonic()
                    self.recover_stale()
                self.run_pending()
            except Exception:  # the store is down: wait and try again, never die
                log.exception("impact preview pass failed; retrying")
            self._stop.wait(self._poll)

    def recover_stale(self) -> int:
        """Previews 'running' with no progress for longer than ``stale_after`` back to
        the queue: a long preview that keeps committing progress is left alone."""
        with self._engine.begin() as connection:
            heartbeat = func.coalesce(_PREVIEWS.c.progress_at, _PREVIEWS.c.started_at)
            result = connection.execute(
                update(_PREVIEWS).where(
                    _PREVIEWS.c.status == RUNNING,
                    heartbeat < now_utc() - self._stale_after)
                .values(status=QUEUED, started_at=None, done=0, total=0))
        if result.rowcount:
            log.warning("%d impact preview(s) left running by a stopped engine requeued",
                        result.rowcount)
        return result.rowcount

    # -- claiming --

    def run_pending(self) -> int:
        """Run queued previews, oldest first, until none is left; returns how many
        this runner ran (another runner may take some meanwhile)."""
        ran = 0
        while not self._stop.is_set():
            claim = self._claim_next()
            if claim is None:
                break
            self.run_claimed(claim)
            ran += 1
        return ran

    def _claim_next(self) -> Claim | None:
        with reader(self._engine).connect() as connection:
            queued = connection.execute(
                select(_PREVIEWS.c.id).where(_PREVIEWS.c.status == QUEUED)
                .order_by(_PREVIEWS.c.id).limit(8)).scalars().all()
        for preview_id in queued:
            claim = self.claim(preview_id)
            if claim is not None:
                return claim
        return None

    def claim(self, preview_id: int) -> Claim | None:
        """Take ``preview_id`` if it is still queued: one UPDATE, so of two runners
        asking at once exactly one gets it."""
        started_at = now_utc()
        with self._engine.begin() as connection:
            taken = connection.execute(
                update(_PREVIEWS).where(_PREVIEWS.c.id == preview_id,
                                        _PREVIEWS.c.status == QUEUED)
                .values(status=RUNNING, started_at=started_at, finished_at=None, done=0,
                        total=0, error=None)).rowcount
        return Claim(preview_id, started_at) if taken == 1 else None

    # -- one preview --

    def run_claimed(self, claim: Claim) -> None:
        """Run a claimed preview to done or failed; never raises."""
        try:
            self._execute(claim)
        except PreviewFailed as error:
            self._settle(claim, status=FAILED, error=str(error), finished_at=now_utc())
        except _Released:
            self._settle(claim, status=QUEUED, started_at=None, done=0, total=0)
        except _LostClaim:
            log.warning("impact preview %d was taken over by another runner",
                        claim.preview_id)
        except Exception as error:  # a defect or the store: the preview says so
            log.exception("impact preview %d failed", claim.preview_id)
            self._settle(claim, status=FAILED, finished_at=now_utc(),
                         error=f"internal error ({type(error).__name__}); "
                               "the engine log has the details")

    def _settle(self, claim: Claim, **values: Any) -> None:
        """A last write that must not raise: if it cannot be made, the preview stays
        running until recovery finds it stale and queues it again."""
        try:
            self._write(claim, **values)
        except _LostClaim:
            log.warning("impact preview %d was taken over by another runner",
                        claim.preview_id)
        except Exception:
            log.exception("could not record the end of impact preview %d", claim.preview_id)

    def _execute(self, claim: Claim) -> None:
        plan = self._plan(claim.preview_id)
        upper, journal_count = self._journal_extent(plan.selection)
        tests = plan.test_messages[:max(0, plan.selection["limit"] - journal_count)]
        total = journal_count + len(tests)
        self._write(claim, baseline_version=plan.baseline_version, total=total)
        report = _Report(self._report_cap)
        done = 0
        for rows in self._journal_chunks(plan.selection, upper, journal_count):
            for row in rows:
                item = replayable(row.raw, row.format, row.received_at,
                                  plan.draft.charset_of(row.source))
                report.add({"message_id": row.message_id}, plan.compare(item))
            done += len(rows)
            if self._stop.is_set():
                raise _Released
            self._write(claim, done=done)
        journal_done = done
        for test in tests:
            report.add({"test": test.file, "case": test.case},
                       plan.compare(replayable(test.raw, "hl7v2")))
            done += 1
        self._write(claim, status=DONE, finished_at=now_utc(), done=done, total=done,
                    journal_messages=journal_done, test_messages=len(tests),
                    summary=report.tally.as_dict(), report=report.as_dict())

    def _plan(self, preview_id: int) -> _Plan:
        """The preview's versions, each compiled once, and its rule test messages."""
        with Session(reader(self._engine)) as session:
            preview = session.get(ImpactPreview, preview_id)
            assert preview is not None  # claimed, and previews are never deleted
            version = session.get(RuleSetVersion, preview.rule_set_version_id)
            assert version is not None  # a foreign key
            if version.content_hash != preview.content_hash:
                raise PreviewFailed(
                    f"version {version.version} changed after this preview was requested",
                    hint="Request a new preview of its current content")
            published = session.scalars(
                select(RuleSetVersion).where(RuleSetVersion.status == "published")
                .order_by(RuleSetVersion.version.desc()).limit(1)).first()
            if published is None:
                raise PreviewFailed("no version is published: there is nothing to compare with")
            baseline, draft = from_content(published.content), from_content(version.content)
            return _Plan(
                _compiled(published.version, baseline), _compiled(version.version, draft),
                same_mapping(baseline, draft), published.version, dict(preview.selection),
                rule_test_messages(draft))

    # -- the journal --

    def _journal_extent(self, selection: dict[str, Any]) -> tuple[int, int]:
        """(the newest selected journal id, how many of the selection to replay): the
        messages journaled while the preview runs are not part of it."""
        where = _selected(selection)
        with reader(self._engine).connect() as connection:
            upper = connection.execute(select(func.max(_JOURNAL.c.id)).where(where)).scalar()
            if upper is None:
                return 0, 0
            newest = select(_JOURNAL.c.id).where(where, _JOURNAL.c.id <= upper).order_by(
                _JOURNAL.c.id.desc()).limit(selection["limit"]).subquery()
            count = connection.execute(select(func.count()).select_from(newest)).scalar_one()
        return int(upper), int(count)

    def _journal_chunks(self, selection: dict[str, Any], upper: int,
                        count: int) -> Iterator[Sequence[Any]]:
        """The selected rows, newest first, a chunk per short read (no transaction
        stays open while the chunk is replayed)."""
        where, below, left = _selected(selection), upper + 1, count
        columns = (_JOURNAL.c.id, _JOURNAL.c.message_id, _JOURNAL.c.raw, _JOURNAL.c.format,
                   _JOURNAL.c.received_at, _JOURNAL.c.source)
        while left > 0:
            with reader(self._engine).connect() as connection:
                rows = connection.execute(
                    select(*columns).where(where, _JOURNAL.c.id < below)
                    .order_by(_JOURNAL.c.id.desc()).limit(min(self._chunk, left))).all()
            if not rows:
                return  # pruned since it was counted
            yield rows
            below, left = rows[-1].id, left - len(rows)

    def _write(self, claim: Claim, **values: Any) -> None:
        """Update the claimed preview; _LostClaim when another runner has it now."""
        with self._engine.begin() as connection:
            written = connection.execute(
                update(_PREVIEWS).where(_PREVIEWS.c.id == claim.preview_id,
                                        _PREVIEWS.c.status == RUNNING,
                                        _PREVIEWS.c.started_at == claim.started_at)
                .values(progress_at=now_utc(), **values)).rowcount
        if written != 1:
            raise _LostClaim


def _compiled(version: int, source: RuleSource) -> RuleSet:
    try:
        return compile_rule_set(source)
    except RuleSetError as error:
        raise PreviewFailed(f"version {version} does not compile: {error}",
                            hint="Run 'switchboard rules lint' on it") from None


def _selected(selection: dict[str, Any]) -> ColumnElement[bool]:
    """The journal rows ``selection`` names that can be replayed."""
    conditions: list[ColumnElement[bool]] = [
        _JOURNAL.c.raw.is_not(None), _JOURNAL.c.status.not_in(_NOT_REPLAYED)]
    if "since" in selection:
        conditions.append(_JOURNAL.c.received_at >= datetime.fromisoformat(selection["since"]))
    if "until" in selection:
        conditions.append(_JOURNAL.c.received_at < datetime.fromisoformat(selection["until"]))
    if "source" in selection:
        conditions.append(_JOURNAL.c.source == selection["source"])
    return and_(*conditions)


def replayable(raw: bytes, format_name: str, received_at: datetime | None = None,
               charset: str | None = None) -> Replayable:
    """A journaled message read the way the pipeline reads it (HL7 v2 in ``charset``
    when MSH-18 names none: the draft's, so a draft that names a feed's character set
    shows what it changes), or why it cannot be."""
    try:
        if format_name == FHIR_R4:
            record = to_canonical(read_fhir(raw), received_at=received_at or now_utc())
            return Conversion(record, (), True, (FHIR_R4,))
        if format_name == TASK_OUTCOME:
            return OutcomeEvent.read(raw)
        message = parse(raw, charset)
        unreadable = text_error(message)
        if unreadable is not None:  # the pipeline fails it at parse, too
            raise unreadable
        return message
    except Exception as error:  # the pipeline makes any failure here an exception item
        return Unreadable(type(error).__name__)
