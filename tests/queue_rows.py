"""Rows for the exception-queue and work-queue tests, inserted as the pipeline and the
outbox would leave them, and a real pipeline run that leaves a held review."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.ingest import Ingestor
from engine.journal import Journal, Received, now_utc
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.security.identity import Principal
from engine.security.roles import Role
from engine.security.users import UserStore
from engine.store.migrate import upgrade
from engine.store.models import Delivery, ExceptionItem, JournalEntry, Task
from tests.samples import CORPUS
from tests.store_template import copied

ROOT = Path(__file__).resolve().parents[1]
HELD_SAMPLE = "fhir-converter/ORU-R01-RMGEAD.hl7"
HELD_ROW = "abnormal-results-held-for-nurse-review"
REFERRAL_SAMPLE = "fhir-converter/REF-I12-01.hl7"
REFERRAL_ROW = "referral-intake"
PEOPLE = {"olive": "operator", "anna": "analyst", "carl": "compliance", "cora": "clinician",
          "abe": "approver", "adam": "admin", "rita": "registrar"}


def as_(name: str) -> Principal:
    """The principal of one of PEOPLE, as the API or the command line vouches for them."""
    return Principal(name, frozenset({Role(PEOPLE[name])}), "database")


def prepared(engine, people: dict[str, str] | None = None) -> dict[str, str]:
    """A migrated store with the shipped configuration published and one user per role;
    their API tokens by name. With the default people, copied from the session's
    template (tests.store_template) when the store is still untouched."""
    if people is None:
        tokens = copied(engine, _prepare)
        if tokens is not None:
            return tokens
    return _prepare(engine, people)


def _prepare(engine, people: dict[str, str] | None = None) -> dict[str, str]:
    upgrade(engine)
    bootstrap(engine, ROOT)
    users = UserStore(engine)
    return {name: users.add(name, role, "test")
            for name, role in (people or PEOPLE).items()}


def sample(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def ingest(engine, raw: bytes, source: str = "ehr-adt-feed") -> str:
    """Journal ``raw`` as a source would; its message id."""
    journal = Journal(engine)
    try:
        journaled = Ingestor(journal).ingest(Received(raw, source)).journaled
        assert journaled is not None
        return journaled.message_id
    finally:
        journal.close()


def held_review(engine) -> tuple[int, int]:
    """The abnormal result through the real pipeline: (hold task id, journal id)."""
    ingest(engine, sample(HELD_SAMPLE))
    assert Pipeline(engine).run_once() == 1
    with Session(engine) as session:
        task = session.scalars(select(Task).where(Task.row_id == HELD_ROW)).one()
        return task.id, task.journal_id


def referral_task(engine) -> tuple[int, int]:
    """A partner's referral through the real pipeline: (triage task id, journal id)."""
    ingest(engine, sample(REFERRAL_SAMPLE), "partner-referrals")
    assert Pipeline(engine).run_once() == 1
    with Session(engine) as session:
        task = session.scalars(select(Task).where(Task.row_id == REFERRAL_ROW)).one()
        return task.id, task.journal_id


def outcome_events(engine) -> list[JournalEntry]:
    """The task outcome events journaled, oldest first."""
    with Session(engine) as session:
        return list(session.scalars(select(JournalEntry).where(
            JournalEntry.format == "task-outcome").order_by(JournalEntry.id)))


def entry(engine, status: str = "routed", raw: bytes = b"MSH|^~\\&|x",
          patient: str | None = "p1", source: str = "ehr-adt-feed") -> tuple[int, str]:
    """A journal entry: (id, message id)."""
    message_id = str(uuid.uuid4())
    with engine.begin() as connection:
        result = connection.execute(insert(JournalEntry).values(
            message_id=message_id, received_at=now_utc(), source=source, patient_key=patient,
            status=status, size_bytes=len(raw), raw=raw, is_original=False, format="hl7v2"))
    return result.inserted_primary_key[0], message_id


def delivery(engine, journal_id: int, destination: str = "clinic-north",
             status: str = "dead", body: str | None = '{"a": 1}',
             media_type: str = "application/json", held_by: str | None = None,
             attempts: int = 5) -> int:
    moment = now_utc()
    with engine.begin() as connection:
        result = connection.execute(insert(Delivery).values(
            journal_id=journal_id, destination=destination, patient_key="p1",
            sequence=journal_id, status=status,
            idempotency_key=f"{uuid.uuid4()}:{destination}", payload={"a": 1},
            media_type=media_type, body=body, held_by_row=held_by, attempts=attempts,
            error_class="transport_error" if status == "dead" else None,
            last_error="connection refused" if status == "dead" else None,
            created_at=moment, updated_at=moment))
    return result.inserted_primary_key[0]


def exception_item(engine, journal_id: int | None, delivery_id: int | None = None,
                   status: str = "open", connection_id: str = "clinic-north",
                   owner_role: str = "operator", assignee: str | None = None) -> int:
    with engine.begin() as connection:
        result = connection.execute(insert(ExceptionItem).values(
            journal_id=journal_id, delivery_id=delivery_id, connection_id=connection_id,
            error_class="transport_error" if delivery_id else "validation",
            owner_role=owner_role, status=status, assignee=assignee,
            summary="delivery to clinic-north failed after 5 attempts: connection refused"
            if delivery_id else "internal error (KeyError)",
            detail={"attempts": 5} if delivery_id else None, recovery_procedure="Call them",
            created_at=now_utc()))
    return result.inserted_primary_key[0]


def task(engine, journal_id: int | None, mode: str = "hold", row_id: str | None = "row-a",
         queue: str = "nurse-review", status: str = "open", kind: str = "review") -> int:
    with engine.begin() as connection:
        result = connection.execute(insert(Task).values(
            journal_id=journal_id, queue=queue, kind=kind, mode=mode, row_id=row_id,
            status=status, payload={"patient": {"name": "SECRET-NAME"}},
            created_at=now_utc()))
    return result.inserted_primary_key[0]


def delivery_statuses(engine, journal_id: int | None = None) -> dict[int, str]:
    query = select(Delivery.id, Delivery.status)
    if journal_id is not None:
        query = query.where(Delivery.journal_id == journal_id)
    with Session(engine) as session:
        return dict(session.execute(query).all())


def held_behind_failure(engine, destination: str = "clinic-north") -> tuple[int, int]:
    """Two messages of patient p1 to ``destination``: the first's delivery dead-lettered
    and holding its chain (strict ordering), the second's waiting behind it:
    (dead delivery id, waiting delivery id)."""
    from engine.chain_holds import hold_behind_dead_letter

    first, second = entry(engine)[0], entry(engine)[0]
    dead = delivery(engine, first, destination, status="dead")
    behind = delivery(engine, second, destination, status="pending", attempts=0)
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id == behind).values(
            sequence=second + 1))
        hold_behind_dead_letter(connection, dead, first, destination, "p1", first,
                                now_utc())
    return dead, behind
