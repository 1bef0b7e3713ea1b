"""The outbox on SQLite and PostgreSQL: claims keep order per (destination, patient),
failures follow the exception policy (retry with backoff, then dead letter with owner,
recovery procedure and escalation), lapsed claims are taken again."""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from engine.connectors.sink import DeliveryFailed
from engine.exception_queue import ExceptionQueue
from engine.journal import now_utc
from engine.outbox import Attempt, Outbox, unpark_behind
from engine.rules.exception_policy import ErrorClass
from engine.rules.rule_set import compile_rule_set
from engine.rules.source import read_rule_source
from engine.store.migrate import upgrade
from engine.store.models import Delivery, ExceptionItem, JournalEntry
from tests.engine.store.query_plan import plan, statements_sent
from tests.queue_rows import prepared

ROOT = Path(__file__).resolve().parents[3]
RULES = compile_rule_set(read_rule_source(ROOT))
REJECTED = DeliveryFailed(ErrorClass.REJECTED, "HTTP 422 from clinic-north")


def ordered(connection: str, ordering: str):
    """The shipped rules with ``connection``'s catalog entry saying ``ordering``."""
    source = read_rule_source(ROOT)
    documents = tuple(
        replace(doc, data={**doc.data, "ordering": ordering})
        if doc.kind == "connection" and doc.data.get("id") == connection else doc
        for doc in source.documents)
    return compile_rule_set(replace(source, documents=documents))


def journal(engine, count: int, patient: str | None, status: str = "routed") -> list[int]:
    """``count`` journaled messages for ``patient``; their ids, oldest first."""
    ids = []
    with engine.begin() as connection:
        for _ in range(count):
            result = connection.execute(insert(JournalEntry).values(
                message_id=str(uuid.uuid4()), received_at=now_utc(), source="ehr-adt-feed",
                patient_key=patient, status=status, size_bytes=10, raw=b"x"))
            ids.append(result.inserted_primary_key[0])
    return ids


def deliveries(engine, journal_ids: list[int], destination: str = "clinic-north",
               patient: str | None = "p1", status: str = "pending") -> list[int]:
    ids = []
    moment = now_utc()
    with engine.begin() as connection:
        for journal_id in journal_ids:
            result = connection.execute(insert(Delivery).values(
                journal_id=journal_id, destination=destination, patient_key=patient,
                sequence=journal_id, status=status,
                idempotency_key=f"{journal_id}:{destination}", payload={}, attempts=0,
                media_type="application/json", body="{}", created_at=moment,
                updated_at=moment))
            ids.append(result.inserted_primary_key[0])
    return ids


def store(engine):
    upgrade(engine)
    return Outbox(engine, lease=60, rng=random.Random(7))


def ids(chains) -> list[list[int]]:
    return [[c.id for c in chain] for chain in chains]


def statuses(engine) -> dict[int, str]:
    with Session(engine) as session:
        return dict(session.execute(select(Delivery.id, Delivery.status)).all())


def test_claims_chains_in_order_and_marks_them_in_flight(engine):
    outbox = store(engine)
    p1 = deliveries(engine, journal(engine, 3, "p1"), patient="p1")
    p2 = deliveries(engine, journal(engine, 2, "p2"), patient="p2")
    chains = outbox.claim(limit=10)
    assert sorted(ids(chains)) == sorted([p1, p2])
    assert set(statuses(engine).values()) == {"in_flight"}
    assert outbox.claim(limit=10) == []  # nothing twice


def test_a_retrying_or_held_head_blocks_its_chain_only(engine):
    outbox = store(engine)
    later = now_utc() + timedelta(hours=1)
    blocked_head = deliveries(engine, journal(engine, 1, "p1"), patient="p1")
    blocked_tail = deliveries(engine, journal(engine, 2, "p1"), patient="p1")
    held = deliveries(engine, journal(engine, 1, "p2"), patient="p2", status="held")
    held_tail = deliveries(engine, journal(engine, 1, "p2"), patient="p2")
    free = deliveries(engine, journal(engine, 2, "p3"), patient="p3")
    other_destination = deliveries(engine, journal(engine, 1, "p1"), destination="ehr-fhir",
                                   patient="p1")
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id == blocked_head[0])
                           .values(status="retrying", next_attempt_at=later))
    claimed = sorted(ids(outbox.claim(limit=50)))
    assert claimed == sorted([free, other_destination])
    assert not {*blocked_tail, *held_tail, *held} & {i for chain in claimed for i in chain}


def test_what_waits_behind_a_retry_or_a_hold_is_parked_until_it_can_move(engine):
    """A destination down for hours must not make every claim slower (issue 13): what
    queues behind a retrying head is parked until the head's retry, what queues behind
    a hold until a while later or until the hold is decided, so claims walk neither."""
    outbox = store(engine)
    retry_at = now_utc() + timedelta(hours=1)
    head = deliveries(engine, journal(engine, 1, "p1"), patient="p1", status="retrying")
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id.in_(head))
                           .values(next_attempt_at=retry_at))
    behind_retry = deliveries(engine, journal(engine, 3, "p1"), patient="p1")
    (held,) = deliveries(engine, journal(engine, 1, "p2"), patient="p2", status="held")
    behind_hold = deliveries(engine, journal(engine, 2, "p2"), patient="p2")
    free = deliveries(engine, journal(engine, 1, "p3"), patient="p3")
    before = now_utc()
    assert ids(outbox.claim(limit=10)) == [free]
    with Session(engine) as session:
        parked = dict(session.execute(select(Delivery.id, Delivery.next_attempt_at)).all())
    assert {parked[i] for i in behind_retry} == {retry_at}
    assert all(parked[i] > before for i in behind_hold)
    # The hold is decided: what waited behind it moves with the next claim, at once.
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id == held)
                           .values(status="pending"))
        unpark_behind(connection, [held])
    assert ids(outbox.claim(limit=10)) == [[held, *behind_hold]]


def test_a_due_retry_leads_its_chain_again(engine):
    outbox = store(engine)
    head, *tail = deliveries(engine, journal(engine, 3, "p1"))
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id == head)
                           .values(status="retrying", next_attempt_at=now_utc(), attempts=2))
    (chain,) = outbox.claim(limit=10)
    assert [c.id for c in chain] == [head, *tail]
    assert chain[0].attempts == 2


def test_no_delivery_overtakes_a_message_still_waiting_to_be_routed(engine):
    outbox = store(engine)
    first = deliveries(engine, journal(engine, 1, "p1"))
    journal(engine, 1, "p1", status="received")  # its deliveries do not exist yet
    behind = deliveries(engine, journal(engine, 1, "p1"))
    (chain,) = outbox.claim(limit=10)
    assert [c.id for c in chain] == first
    outbox.record([Attempt(chain[0], now_utc())], [], RULES)
    assert outbox.claim(limit=10) == []
    with engine.begin() as connection:
        connection.execute(update(JournalEntry).where(JournalEntry.status == "received")
                           .values(status="routed"))
    assert ids(outbox.claim(limit=10)) == [behind]


def test_a_message_waiting_to_be_routed_holds_up_only_its_own_patient(engine):
    """Regression (issue 13, the frontier): one message left unrouted (a slow pipeline
    lane, or one no worker runs) held up every patient's later deliveries; it must hold
    up only its own patient's, to every destination."""
    outbox = store(engine)
    before = deliveries(engine, journal(engine, 1, "p1"))
    journal(engine, 1, "p1", status="received")
    journal(engine, 1, "p2", status="routing")
    behind = deliveries(engine, journal(engine, 1, "p1"))
    behind += deliveries(engine, journal(engine, 1, "p1"), destination="ehr-fhir")
    behind += deliveries(engine, journal(engine, 1, "p2"), patient="p2")
    other = deliveries(engine, journal(engine, 2, "p3"), patient="p3")
    loose = deliveries(engine, journal(engine, 1, None), patient=None)
    assert sorted(ids(outbox.claim(limit=10))) == sorted([before, other, loose])
    assert {statuses(engine)[i] for i in behind} == {"pending"}


def test_deliveries_for_no_patient_stand_alone(engine):
    outbox = store(engine)
    loose = deliveries(engine, journal(engine, 3, None), patient=None)
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id == loose[0])
                           .values(status="retrying",
                                   next_attempt_at=now_utc() + timedelta(hours=1)))
    assert sorted(ids(outbox.claim(limit=10))) == [[loose[1]], [loose[2]]]


def test_delivered_unsent_and_retry_are_recorded(engine):
    outbox = store(engine)
    first, second, third = deliveries(engine, journal(engine, 3, "p1"), destination="ehr-fhir")
    (chain,) = outbox.claim(limit=10)
    moment = now_utc()
    failure = DeliveryFailed(ErrorClass.TRANSPORT_ERROR, "HTTP 503 from ehr-fhir")
    recorded = outbox.record([Attempt(chain[0], moment), Attempt(chain[1], moment, failure)],
                             [chain[2]], RULES)
    assert [a.claimed.id for a in recorded.delivered] == [first]
    assert [a.claimed.id for a in recorded.retried] == [second]
    with Session(engine) as session:
        rows = {d.id: d for d in session.scalars(select(Delivery))}
        assert (rows[first].status, rows[first].attempts) == ("delivered", 1)
        assert rows[first].delivered_at is not None
        retry = rows[second]
        assert (retry.status, retry.attempts, retry.error_class) == (
            "retrying", 1, "transport_error")
        assert retry.last_error == "HTTP 503 from ehr-fhir"
        # ehr-write-back: exponential from 10 s with 20 % jitter.
        wait = (retry.next_attempt_at - moment).total_seconds()
        assert 8.0 <= wait <= 12.0
        # Given back, and parked behind the retry: no claim looks at it until then.
        assert (rows[third].status, rows[third].next_attempt_at) == (
            "pending", retry.next_attempt_at)
    # The retry blocks the one behind it until it is due.
    assert outbox.claim(limit=10) == []


def test_retries_run_out_into_a_dead_letter_with_owner_and_procedure(engine):
    outbox = store(engine)
    (delivery,) = deliveries(engine, journal(engine, 1, "p1"), destination="clinic-north")
    failure = DeliveryFailed(ErrorClass.REJECTED, "HTTP 422 from clinic-north")
    (chain,) = outbox.claim(limit=10)
    moment = now_utc()
    recorded = outbox.record([Attempt(chain[0], moment, failure)], [], RULES)
    assert [a.claimed.id for a in recorded.dead_lettered] == [delivery]
    assert statuses(engine)[delivery] == "dead"
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem)).one()
    assert (item.delivery_id, item.connection_id, item.error_class, item.owner_role) == (
        delivery, "clinic-north", "rejected", "operator")
    assert item.summary == ("delivery to clinic-north failed after 1 attempt: "
                            "HTTP 422 from clinic-north")
    assert item.recovery_procedure == RULES.connections["clinic-north"].recovery_procedure
    # default-delivery: rejected escalates to admin after 4 h.
    assert item.escalate_to == "admin"
    assert abs((item.escalate_at - moment).total_seconds() - 4 * 3600) < 1


def dead_letter_head(outbox: Outbox, rules=RULES) -> list[int]:
    """Claim the one chain waiting, fail its head as rejected (dead at once) and give
    the rest back; the ids of the chain."""
    (chain,) = outbox.claim(limit=100)
    outbox.record([Attempt(chain[0], now_utc(), REJECTED)], chain[1:], rules)
    return [c.id for c in chain]


def parked_until(engine, delivery_ids: list[int]) -> set:
    with Session(engine) as session:
        return set(session.scalars(select(Delivery.next_attempt_at)
                                   .where(Delivery.id.in_(delivery_ids))))


def test_under_strict_a_dead_letter_holds_its_chain_and_no_other(engine):
    """Regression (issue 14, item 2): a dead letter ended its chain's wait, so the
    discharge went out while the admit lay dead, and retrying the admit sent it after
    the discharge. Under strict (the default) the dead letter holds the later deliveries
    of its (destination, patient); other patients and other destinations flow."""
    outbox = store(engine)
    admit, discharge = deliveries(engine, journal(engine, 2, "p1"))
    assert dead_letter_head(outbox) == [admit, discharge]
    assert statuses(engine)[admit] == "dead"
    later = deliveries(engine, journal(engine, 1, "p1"))  # made after the dead letter
    other_patient = deliveries(engine, journal(engine, 1, "p2"), patient="p2")
    other_destination = deliveries(engine, journal(engine, 1, "p1"), destination="ehr-fhir")
    before = now_utc()
    assert sorted(ids(outbox.claim(limit=10))) == sorted([other_patient, other_destination])
    assert {statuses(engine)[i] for i in (discharge, *later)} == {"pending"}
    # Parked behind the dead letter: no claim walks them while it holds them.
    assert all(moment > before for moment in parked_until(engine, [discharge, *later]))
    assert outbox.claim(limit=10) == []


def test_under_skip_dead_a_dead_letter_ends_its_chains_wait(engine):
    """skip_dead states what every destination did before: the next delivery may go."""
    outbox = store(engine)
    rules = ordered("clinic-north", "skip_dead")
    admit, discharge = deliveries(engine, journal(engine, 2, "p1"))
    assert dead_letter_head(outbox, rules) == [admit, discharge]
    later = deliveries(engine, journal(engine, 1, "p1"))
    assert ids(outbox.claim(limit=10)) == [[discharge, *later]]


def test_what_waits_behind_dead_letters_is_parked_until_an_operator_releases_it(engine):
    """Thousands of deliveries held behind a destination's dead letters must cost a
    claim nothing: a claim parks what it finds behind a dead letter, so that no later
    claim walks it again, and a retry of the dead letter brings its chain back at once."""
    prepared(engine)
    outbox = Outbox(engine, lease=60, rng=random.Random(7))
    heads = {}
    for patient in ("p1", "p2"):
        deliveries(engine, journal(engine, 1, patient), patient=patient)
        heads[patient] = dead_letter_head(outbox)[0]
    behind = {patient: deliveries(engine, journal(engine, 300, patient), patient=patient)
              for patient in heads}
    free = deliveries(engine, journal(engine, 1, "p3"), patient="p3")
    claimed = [chain for _ in range(8) for chain in ids(outbox.claim(limit=50))]
    assert claimed == [free]
    now = now_utc()
    assert all(moment > now for moment in parked_until(engine, behind["p1"] + behind["p2"]))
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem.id).where(
            ExceptionItem.delivery_id == heads["p1"])).one()
    ExceptionQueue(engine).retry(item, "olive")
    assert ids(outbox.claim(limit=50)) == [[heads["p1"], *behind["p1"][:49]]]


def test_the_last_allowed_attempt_dead_letters(engine):
    outbox = store(engine)
    deliveries(engine, journal(engine, 1, "p1"), destination="ehr-fhir")
    failure = DeliveryFailed(ErrorClass.TIMEOUT, "no answer from ehr-fhir in 30 s")
    for attempt in range(1, 41):  # ehr-write-back allows 40 attempts
        with engine.begin() as connection:
            connection.execute(update(Delivery).values(next_attempt_at=now_utc()))
        (chain,) = outbox.claim(limit=10)
        assert chain[0].attempts == attempt - 1
        outbox.record([Attempt(chain[0], now_utc(), failure)], [], RULES)
    assert set(statuses(engine).values()) == {"dead"}
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ExceptionItem)) == 1


def test_a_lapsed_claim_is_taken_again_and_release_frees_claims(engine):
    outbox = store(engine)
    (delivery,) = deliveries(engine, journal(engine, 1, "p1"))
    assert ids(outbox.claim(limit=10)) == [[delivery]]
    assert outbox.claim(limit=10) == []
    assert ids(outbox.claim(limit=10, now=now_utc() + timedelta(seconds=61))) == [[delivery]]
    assert outbox.release_claims() == 1
    assert statuses(engine)[delivery] == "pending"


def test_concurrent_claimers_never_share_or_reorder_a_chain(engine):
    store(engine)
    for patient in ("p1", "p2", "p3", "p4"):
        deliveries(engine, journal(engine, 10, patient), patient=patient)
    taken: list[list[int]] = []
    lock = threading.Lock()

    def claimer() -> None:
        worker = Outbox(engine, lease=60)
        deadline = time.monotonic() + 30
        while sum(map(len, taken)) < 40 and time.monotonic() < deadline:
            for chain in worker.claim(limit=3):
                with lock:
                    taken.append([c.id for c in chain])
                worker.record([Attempt(c, now_utc()) for c in chain], [], RULES)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    flat = [i for chain in taken for i in chain]
    assert len(taken) >= 4  # several claims, not one worker taking everything at once
    assert sorted(flat) == sorted(statuses(engine))  # each once
    with Session(engine) as session:
        patient_of = dict(session.execute(select(Delivery.id, Delivery.patient_key)).all())
    for patient in ("p1", "p2", "p3", "p4"):
        mine = [i for i in flat if patient_of[i] == patient]
        assert mine == sorted(mine)


def test_a_claim_probes_chains_through_the_partial_indexes(engine):
    """Regression (issue 13, item 3 and the frontier): the claim looks for the chains
    that can move, and for each patient's unrouted messages, in SQL. Each probe must
    take a few steps of a partial index, never walk a table, a chain's delivered
    history (ix_deliveries_order) or every patient's unrouted messages. On PostgreSQL
    with the tables analysed, as autovacuum keeps them."""
    outbox = store(engine)
    later = now_utc() + timedelta(hours=1)
    for patient in ("p1", "p2", "p3"):
        deliveries(engine, journal(engine, 300, patient), destination="lab-system",
                   patient=patient, status="delivered")
        head = deliveries(engine, journal(engine, 1, patient), destination="lab-system",
                          patient=patient, status="retrying")
        with engine.begin() as connection:
            connection.execute(update(Delivery).where(Delivery.id.in_(head))
                               .values(next_attempt_at=later))
        deliveries(engine, journal(engine, 100, patient), destination="lab-system",
                   patient=patient)
        deliveries(engine, journal(engine, 20, patient), destination="clinic-north",
                   patient=patient)
    journal(engine, 50, "p9", status="received")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    with statements_sent(engine) as sent:
        assert sum(map(len, outbox.claim(limit=50)))  # so every claim query ran
    walks = [plan(engine, sql, parameters) for sql, parameters in sent
             if sql.startswith("SELECT deliveries.id, deliveries.journal_id")]
    heads = [plan(engine, sql, parameters) for sql, parameters in sent
             if " ahead" in sql and "ORDER BY ahead.sequence DESC" in sql]
    assert walks and len(heads) == 1, sent
    # The ready walk and the due walk probe each delivery's chain and patient through
    # the partial indexes; what they find parked behind the retrying heads is not
    # walked again (see the parking test).
    for chosen in walks:
        assert "ix_deliveries_stalling" in chosen and "ix_journal_unrouted" in chosen, chosen
        # Dead letters that hold their chains are probed through their own index.
        assert "ix_chain_holds_chain" in chosen, chosen
    assert "ix_deliveries_blocking" in heads[0], heads
    plans = [*walks, *heads]
    for chosen in plans:
        for walk in ("SCAN deliveries", "SCAN ahead", "SCAN unrouted", "SCAN chain_holds",
                     "Seq Scan", "ix_deliveries_order", "ix_journal_status_id",
                     "ix_journal_patient"):
            assert walk not in chosen, chosen
