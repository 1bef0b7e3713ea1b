"""The audit trail: an append-only, HMAC-chained record of every security change.

Each event says who, when and what, and for a change to a versioned thing its content
hashes before and after and the reason. Its ``hash`` is an HMAC-SHA256, keyed with a
secret kept outside the database (:mod:`engine.security.audit_key`), over the previous
event's hash and its own fields. Editing, inserting or deleting a stored event breaks the
chain where it happened, and only a holder of the key could mend it. Events are chained
by the previous hash, not by their ids: PostgreSQL sequences have gaps. Once committed,
each event's head is also written outside the database
(:mod:`engine.security.audit_anchor`), which catches a cut tail or a recomputed chain.
:meth:`AuditLog.check` names the first problem; ``switchboard audit verify`` prints it.

The chain only stays single if appends are serialised: two writers reading the same tail
would fork it. On PostgreSQL an advisory lock held to the end of the transaction does
that; on SQLite the transaction takes the database's one write lock before reading the
tail. So the chain's order is the ids' order.

``detail`` and ``reason`` are kept in clear for auditors: they must never hold secrets
(tokens, passwords) or PHI. Name things by id instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Literal

from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.orm import Session

from engine.errors import SwitchboardError
from engine.security.audit_anchor import AuditAnchor, Head, anchor_after_commit, default_anchor
from engine.security.audit_key import audit_key
from engine.store.database import reader
from engine.store.models import AuditEvent

# The key of the PostgreSQL advisory lock that serialises appends: "SBAUDIT\0" in ASCII.
AUDIT_CHAIN_LOCK = 0x5342_4155_4449_5400
ACTOR_MAX_LENGTH = 64
HASH_MAX_LENGTH = 64
READ_BATCH = 500  # events streamed at a time, and anchored heads looked up at a time
PROBLEMS_KEPT = 50  # problems a Verdict lists, the first in chain order

Clock = Callable[[], datetime]
ProblemKind = Literal["edited", "inserted", "deleted", "truncated", "rewritten"]


class AuditError(SwitchboardError):
    """An audit event that cannot be recorded as given."""


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Problem:
    """Where the chain does not hold: the event, what happened to it, and the evidence."""

    event_id: int
    kind: ProblemKind
    text: str
    from_anchor: bool = False

    @property
    def order(self) -> tuple[int, bool]:
        """Chain order; at one event, what the chain itself shows comes first."""
        return self.event_id, self.from_anchor


@dataclass(frozen=True)
class Verdict:
    """What :meth:`AuditLog.check` found: the first problem in chain order, if any."""

    checked: int  # events read from the table
    anchor: AuditAnchor
    anchor_head: int | None  # the highest event id the anchor names
    first: Problem | None
    counts: dict[ProblemKind, int]  # problems of each kind, the first included
    # The first PROBLEMS_KEPT problems in chain order, for a reader to look each one up.
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.first is None

    @property
    def kind(self) -> ProblemKind | None:
        return self.first.kind if self.first else None

    @property
    def event_id(self) -> int | None:
        return self.first.event_id if self.first else None

    @property
    def problem(self) -> str | None:
        return self.first.text if self.first else None


class AuditLog:
    """Appends to and checks the audit chain in the database behind ``engine``.

    ``key`` and ``anchor`` default to :func:`~engine.security.audit_key.audit_key` and
    :func:`~engine.security.audit_anchor.default_anchor`, found when first needed."""

    def __init__(self, engine: Engine, clock: Clock = now_utc, key: bytes | None = None,
                 anchor: AuditAnchor | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self._key = key
        self._anchor = anchor

    @property
    def anchor(self) -> AuditAnchor:
        if self._anchor is None:
            self._anchor = default_anchor(self._engine.url)
        return self._anchor

    def lock(self, session: Session) -> None:
        """Hold the chain for the rest of ``session``'s transaction.

        Call it first in a transaction that checks state before changing it, so the
        check and the change are serialised with other writers too. Calling it again in
        the same transaction is harmless."""
        connection = session.connection()
        dialect = connection.dialect.name
        if dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": AUDIT_CHAIN_LOCK})
        elif dialect != "sqlite":
            # On SQLite, a writing transaction holds the write lock from its start (see
            # engine.store.database.reader), so the tail cannot change under it.
            raise AuditError(f"the audit chain cannot be serialised on {dialect}",
                             hint="Use SQLite or PostgreSQL")

    def record(self, session: Session, actor: str, action: str, target_type: str | None,
               target_id: str | None, detail: dict[str, Any] | None, *,
               before_hash: str | None = None, after_hash: str | None = None,
               reason: str | None = None) -> AuditEvent:
        """Append one event in ``session``'s transaction: it is kept only if the change it
        describes is committed with it, and anchored once that commit is done."""
        _check_fields(actor, before_hash, after_hash)
        key = self._mac_key(create=True)  # before the lock: a bad key fails at once
        self.lock(session)
        tail = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
        event = AuditEvent(at=self._clock().astimezone(UTC), actor=actor, action=action,
                           target_type=target_type, target_id=target_id, detail=detail,
                           before_hash=before_hash, after_hash=after_hash, reason=reason,
                           prev_hash=tail)
        event.hash = event_mac(key, event)
        session.add(event)
        session.flush()
        anchor_after_commit(session, self.anchor, event)
        return event

    def check(self) -> Verdict:
        """The chain checked against its key and its anchor; the first problem named.

        The chain is read in id order; each event should carry the MAC of its own
        fields and follow the event before it. The first that does not is:

        - ``inserted`` when the event after it follows the event before it (the chain
          goes around it), or when it is the last, fails its MAC and comes after the
          anchor's last head (nothing vouches for it);
        - otherwise ``edited`` when it fails its MAC (its fields, or its hash, changed);
        - otherwise ``deleted``: it is genuine but follows a hash the event before it
          does not have, so an event between them is missing.

        Each head in the anchor should still be in the table (found by its hash: ids
        are not part of the chain). When one is not, its id is:

        - ``rewritten`` when an event with that id is there with another hash: the chain
          was recomputed from there or before (which takes the key), or cut and written
          on where ids are reused (SQLite);
        - ``truncated`` when it is beyond the table's last event (the tail was cut);
        - ``deleted`` otherwise (and named by its own id, not the next one's).

        At one event, what the chain shows is named before what the anchor shows. An
        anchor holding only some of the heads (other hosts write their own) is fine:
        heads written after the check began are not read."""
        findings = _Findings(keep_ids=False)
        checked, head = self._scan(findings)
        return Verdict(checked, self.anchor, head, findings.first, findings.counts,
                       tuple(findings.earliest()))

    def verify(self) -> list[str]:
        """The ids of every event :meth:`check` finds a problem at, in chain order; empty
        when the chain is intact. A deleted or cut-off event is named by its anchored id
        when the anchor holds it, and by the event after the gap otherwise."""
        findings = _Findings(keep_ids=True)
        self._scan(findings)
        return [str(event_id) for event_id in sorted(findings.ids)]

    def _scan(self, findings: _Findings) -> tuple[int, int | None]:
        anchor = self.anchor
        # Measured before the table is read: every head within it is of an event that
        # was committed before, so the read sees it (unless it was taken out since).
        limit = anchor.size()
        with Session(reader(self._engine)) as session:
            last_id = session.scalar(select(func.max(AuditEvent.id)))
            head = _check_anchor(session, anchor.heads(limit), last_id, findings.add)
            if last_id is None:
                return 0, head
            walk = _ChainWalk(self._mac_key(create=False), head, findings.add)
            query = select(AuditEvent).order_by(AuditEvent.id).execution_options(
                yield_per=READ_BATCH)
            for event in session.scalars(query):
                walk.step(event)
            walk.finish()
        return walk.checked, head

    def _mac_key(self, create: bool) -> bytes:
        if self._key is None:
            self._key = audit_key(create=create)
        return self._key


def _check_fields(actor: str, before_hash: str | None, after_hash: str | None) -> None:
    if not 0 < len(actor) <= ACTOR_MAX_LENGTH:
        raise AuditError(f"audit actor {actor!r} must be 1 to {ACTOR_MAX_LENGTH} characters")
    for name, value in (("before_hash", before_hash), ("after_hash", after_hash)):
        if value is not None and len(value) > HASH_MAX_LENGTH:
            raise AuditError(f"audit {name} must be at most {HASH_MAX_LENGTH} characters")


def event_mac(key: bytes, event: AuditEvent) -> str:
    """HMAC-SHA256 (hex) over the previous hash and the canonical JSON of the event's
    fields: every field but its id, which is not part of the chain."""
    fields = {
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "detail": event.detail,
        "before_hash": event.before_hash,
        "after_hash": event.after_hash,
        "reason": event.reason,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    message = ((event.prev_hash or "") + canonical).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class _Findings:
    """Problems as the checks report them, in no particular order: the first in chain
    order, how many of each kind, the first PROBLEMS_KEPT in chain order, and (for
    :meth:`AuditLog.verify`) every event id."""

    def __init__(self, keep_ids: bool) -> None:
        self.first: Problem | None = None
        self.counts: dict[ProblemKind, int] = {}
        self.ids: set[int] = set()
        self._keep_ids = keep_ids
        self._kept: list[Problem] = []

    def add(self, problem: Problem) -> None:
        if self.first is None or problem.order < self.first.order:
            self.first = problem
        self.counts[problem.kind] = self.counts.get(problem.kind, 0) + 1
        if self._keep_ids:
            self.ids.add(problem.event_id)
        self._kept.append(problem)
        if len(self._kept) > 2 * PROBLEMS_KEPT:  # a bounded memory however broken
            self._kept = self.earliest()

    def earliest(self) -> list[Problem]:
        return sorted(self._kept, key=lambda problem: problem.order)[:PROBLEMS_KEPT]


Report = Callable[[Problem], None]


class _ChainWalk:
    """Judges each event, streamed in id order, by its MAC, its link to the event before
    it and the link of the event after it (see :meth:`AuditLog.check`)."""

    def __init__(self, key: bytes, anchor_head: int | None, report: Report) -> None:
        self._key = key
        self._anchor_head = anchor_head
        self._report = report
        self._previous: AuditEvent | None = None  # the last event that belongs
        self._current: AuditEvent | None = None  # read, judged once the next is read
        self.checked = 0

    def step(self, following: AuditEvent) -> None:
        self.checked += 1
        if self._current is not None:
            self._judge(self._current, following)
        self._current = following

    def finish(self) -> None:
        if self._current is not None:
            self._judge(self._current, None)

    def _judge(self, event: AuditEvent, following: AuditEvent | None) -> None:
        problem = self._problem(event, following)
        if problem is not None:
            self._report(problem)
        if problem is None or problem.kind != "inserted":
            self._previous = event

    def _problem(self, event: AuditEvent, following: AuditEvent | None) -> Problem | None:
        expected = self._previous.hash if self._previous else None
        linked = event.prev_hash == expected
        genuine = hmac.compare_digest(event.hash.encode("utf-8"),
                                      event_mac(self._key, event).encode("ascii"))
        if linked and genuine:
            return None
        if following is not None and following.prev_hash == expected:
            return Problem(event.id, "inserted", "the event after it follows the one "
                           "before it: it does not belong to the chain")
        if following is None and not genuine and self._beyond_anchor(event):
            return Problem(event.id, "inserted", "it fails its MAC and comes after the "
                           f"anchor's last head, event {self._anchor_head}")
        if not genuine:
            return Problem(event.id, "edited", "its content no longer matches its MAC")
        before = f"event {self._previous.id}" if self._previous else "nothing (it is first)"
        return Problem(event.id, "deleted", "an event before it is missing: it follows a "
                       f"hash that {before} does not have")

    def _beyond_anchor(self, event: AuditEvent) -> bool:
        return self._anchor_head is not None and event.id > self._anchor_head


def _check_anchor(session: Session, heads: Iterable[Head], last_id: int | None,
                  report: Report) -> int | None:
    """Look each anchored head up in the table, a batch at a time; the highest id."""
    top: int | None = None
    for batch in _batched(iter(heads), READ_BATCH):
        top = max(top or 0, *(event_id for event_id, _hash in batch))
        ids = [event_id for event_id, _hash in batch]
        hashes = [event_hash for _id, event_hash in batch]
        found = session.execute(select(AuditEvent.id, AuditEvent.hash).where(
            or_(AuditEvent.id.in_(ids), AuditEvent.hash.in_(hashes)))).all()
        present = {event_hash for _id, event_hash in found}
        held = {event_id for event_id, _hash in found}
        for event_id, event_hash in batch:
            if event_hash not in present:
                report(_missing_head(event_id, event_id in held, last_id))
    return top


def _missing_head(event_id: int, held: bool, last_id: int | None) -> Problem:
    if held:
        return Problem(event_id, "rewritten", "the anchor recorded another hash for it: "
                       "the chain was replaced from here or before", from_anchor=True)
    if last_id is None or event_id > last_id:
        ends = f"ends at event {last_id}" if last_id is not None else "is empty"
        return Problem(event_id, "truncated", f"the anchor names it but the table {ends}",
                       from_anchor=True)
    return Problem(event_id, "deleted", "the anchor names it but it is no longer in the table",
                   from_anchor=True)


def _batched(heads: Iterator[Head], size: int) -> Iterator[list[Head]]:
    while batch := list(islice(heads, size)):
        yield batch
