"""The pipeline on SQLite and PostgreSQL: journaled messages become stage events,
deliveries (held or pending, minimised), tasks and, when something is wrong, exception
items; the example configuration is bootstrapped as published version 1."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.encoders import outbound_control_id
from engine.hl7v2 import parse
from engine.ingest import Ingestor
from engine.journal import Journal, Received
from engine.pipeline import STAGES, Pipeline
from engine.rule_versions import bootstrap, load_published
from engine.store.migrate import upgrade
from engine.store.models import Delivery, ExceptionItem, JournalEntry, StageEvent, Task
from tests.engine.store.query_plan import sqlite_plan
from tests.samples import CORPUS

ROOT = Path(__file__).resolve().parents[3]


def prepared(engine, root: Path = ROOT) -> Ingestor:
    upgrade(engine)
    assert bootstrap(engine, root) == 1
    assert bootstrap(engine, root) is None  # only the first start imports
    return Ingestor(Journal(engine))


def sample(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def test_abnormal_result_becomes_held_delivery_task_and_stages(engine):
    sb = prepared(engine)
    sb.ingest(Received(sample("fhir-converter/ORU-R01-RMGEAD.hl7"), "ehr-adt-feed"))
    assert Pipeline(engine).run_once() == 1
    with Session(engine) as session:
        entry = session.scalars(select(JournalEntry)).one()
        assert (entry.status, entry.rule_set_version) == ("routed", 1)
        stages = session.scalars(select(StageEvent.stage).order_by(StageEvent.id)).all()
        assert stages == ["journaled", *STAGES]
        deliveries = {d.destination: d for d in session.scalars(select(Delivery))}
        assert {k: d.status for k, d in deliveries.items()} == {
            "ehr-fhir": "held", "clinic-north": "pending", "analytics-warehouse": "pending",
        }
        assert deliveries["ehr-fhir"].held_by_row == "abnormal-results-held-for-nurse-review"
        assert deliveries["analytics-warehouse"].payload["patient"] == {"gender": "female"}
        assert deliveries["clinic-north"].idempotency_key == f"{entry.message_id}:clinic-north"
        # Encoded for each destination's catalog format, from its minimised payload.
        north = deliveries["clinic-north"]
        assert north.media_type == "application/fhir+json"
        bundle = Bundle.model_validate(json.loads(north.body))
        assert bundle.type == "transaction"
        assert "address" not in north.body  # outside clinic-north's data scope
        warehouse = deliveries["analytics-warehouse"]
        assert (warehouse.media_type, json.loads(warehouse.body)) == (
            "application/json", warehouse.payload)
        task = session.scalars(select(Task)).one()
        assert (task.queue, task.kind, task.mode, task.status) == (
            "nurse-review", "abnormal-result-review", "hold", "open")
        # The rule says the review is due two hours after the task is created.
        assert (task.due_at - task.created_at).total_seconds() == 7200
        assert session.scalars(select(ExceptionItem)).all() == []


def routed_to_a_task(engine, name: str) -> Task:
    """The corpus message ``name`` from the EHR's feed through the pipeline: the one
    task it made."""
    prepared(engine).ingest(Received(sample(name), "ehr-adt-feed"))
    Pipeline(engine).run_once()
    with Session(engine) as session:
        return session.scalars(select(Task)).one()


def test_the_nurse_review_task_shows_the_value_unit_range_and_flag(engine):
    """Regression: the SN value ``^182`` reached the nurse's task as nothing at all."""
    task = routed_to_a_task(engine, "fhir-converter/ORU-R01-RMGEAD.hl7")
    assert (task.queue, task.kind) == ("nurse-review", "abnormal-result-review")
    [result] = task.payload["results"]
    assert {key: result.get(key) for key in (
        "code", "display", "value", "units", "reference_range", "abnormal_flags")} == {
        "code": "1554-5", "display": "GLUCOSE", "value": {"type": "SN", "number": 182},
        "units": "mg/dl", "reference_range": "70_105", "abnormal_flags": ["H"]}


def test_the_nurse_does_not_see_the_tests_name_as_its_coding_system(engine):
    """Regression: OBX-3.3 of the glucose holds the test's name, and the task showed it
    as the result's coding system."""
    task = routed_to_a_task(engine, "fhir-converter/ORU-R01-RMGEAD.hl7")
    with Session(engine) as session:
        stage = session.scalars(select(StageEvent).where(
            StageEvent.stage == "normalised")).one()
    [result] = task.payload["results"]
    assert "system" not in result
    assert stage.detail["issues"] == [
        "OBX[1]-3.3 -> results[*].system: not a coding system name (it holds spaces); "
        "left out"]


def test_a_coded_result_reaches_the_nurse_with_its_coding_system(engine):
    """Regression: the culture's CWE value reached the task as its code alone."""
    task = routed_to_a_task(engine, "fhir-converter/ORU-R01-01.hl7")
    assert task.queue == "nurse-review"
    culture = task.payload["results"][2]
    assert culture["value"] == {
        "type": "CWE", "code": {"code": "27268008", "display": "Salmonella", "system": "SCT"},
        "text": "Salmonella species"}
    assert culture["abnormal_flags"] == ["A"]


def test_discharge_fans_out_to_tasks(engine):
    sb = prepared(engine)
    sb.ingest(Received(sample("fhir-converter/ADT-A03-01.hl7"), "ehr-adt-feed"))
    Pipeline(engine).run_once()
    with Session(engine) as session:
        kinds = sorted(session.scalars(select(Task.kind)))
        assert kinds == ["follow-up-appointment", "home-health-referral",
                         "medication-reconciliation"]
        assert sorted(session.scalars(select(Delivery.destination))) == [
            "analytics-warehouse", "bed-board", "patient-outreach"]


def test_duplicates_and_rejects_are_not_processed(engine):
    sb = prepared(engine)
    raw = sample("fhir-converter/ADT-A01-01.hl7")
    sb.ingest(Received(raw, "ehr-adt-feed"))
    sb.ingest(Received(raw, "ehr-adt-feed"))
    sb.ingest(Received(b"not hl7", "ehr-adt-feed"))
    assert Pipeline(engine).run_once() == 1
    with Session(engine) as session:
        statuses = sorted(session.scalars(select(JournalEntry.status)))
        assert statuses == ["duplicate", "rejected", "routed"]
        assert len(session.scalars(select(Delivery)).all()) == 3  # lab, bed board, warehouse
        lab = session.scalars(select(Delivery).where(Delivery.destination == "lab-system")).one()
        message_id = session.scalars(select(JournalEntry.message_id).where(
            JournalEntry.status == "routed")).one()
    assert lab.media_type == "application/hl7-v2"
    outbound = parse(lab.body)
    assert outbound.get("MSH-10") == outbound_control_id(message_id, "lab-system")
    assert outbound.get("MSH-9.1") == "ADT" and outbound.get("PID-3.1")


def test_unroutable_message_opens_an_owned_exception(engine, tmp_path):
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "catalog", tmp_path / "catalog")
    (tmp_path / "rules" / "routes" / "analytics.yaml").unlink()
    sb = prepared(engine, tmp_path)
    sb.ingest(Received(sample("fhir-converter/VXU-V04-01.hl7"), "ehr-adt-feed"))
    Pipeline(engine).run_once()
    with Session(engine) as session:
        item = session.scalars(select(ExceptionItem)).one()
        assert item.summary == "no route row matched this message: it goes nowhere"
        assert (item.error_class, item.owner_role) == ("validation", "analyst")
        assert item.recovery_procedure and "EHR" in item.recovery_procedure
        assert session.scalars(select(Delivery)).all() == []


def test_the_stored_version_rebuilds_the_same_rule_set(engine):
    prepared(engine)
    running = load_published(engine)
    assert running.version == 1
    assert {row.id for row in running.rule_set.routes.rows} >= {
        "abnormal-results-held-for-nurse-review", "all-events-to-analytics"}


def test_concurrent_workers_process_each_message_once(engine, caplog):
    sb = prepared(engine)
    raw = sample("fhir-converter/ADT-A04-01.hl7")
    for number in range(30):
        message = parse(raw)
        message.set("MSH-10", f"CONC{number}")
        sb.ingest(Received(message.encode(), "ehr-adt-feed"))
    counts: list[int] = []
    workers = [threading.Thread(target=lambda: counts.append(Pipeline(engine).run_once()))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sum(counts) == 30
    with Session(engine) as session:
        assert set(session.scalars(select(JournalEntry.status))) == {"routed"}
        assert len(session.scalars(select(Delivery)).all()) == 60  # lab + warehouse each
    assert "pipeline pass failed" not in caplog.text


def test_lanes_split_the_journal_by_patient(engine):
    sb = prepared(engine)
    raw = sample("fhir-converter/ADT-A04-01.hl7")
    for number in range(40):
        message = parse(raw)
        message.set("MSH-10", f"LANE{number}")
        message.set("PID-3.1", f"P{number % 8}")  # 8 patients, 5 messages each
        sb.ingest(Received(message.encode(), "ehr-adt-feed"))
    first = Pipeline(engine, lane=(0, 2)).run_once(limit=1000)
    second = Pipeline(engine, lane=(1, 2)).run_once(limit=1000)
    assert first + second == 40 and first and second
    with Session(engine) as session:
        assert set(session.scalars(select(JournalEntry.status))) == {"routed"}
        # Each patient's messages were taken by one worker, in the order they arrived.
        stages = session.execute(
            select(JournalEntry.patient_key, JournalEntry.id, StageEvent.id)
            .join(StageEvent, StageEvent.journal_id == JournalEntry.id)
            .where(StageEvent.stage == "intents_recorded").order_by(StageEvent.id)).all()
    by_patient: dict[str, list[int]] = {}
    for patient_key, journal_id, _ in stages:
        by_patient.setdefault(patient_key, []).append(journal_id)
    assert len(by_patient) == 8
    assert all(ids == sorted(ids) for ids in by_patient.values())


def test_a_defect_in_a_stage_fails_the_message_with_an_owned_exception(engine, monkeypatch):
    """Regression: a defect raised after routing (here, in an encoder) left the message
    recorded as routed, its deliveries half made. It must fail as a whole, visibly."""
    from engine import encoders

    def broken(_record, _delivery):
        raise KeyError("a defect")

    monkeypatch.setitem(encoders.ENCODERS, "canonical-json", broken)
    sb = prepared(engine)
    sb.ingest(Received(sample("fhir-converter/ADT-A01-01.hl7"), "ehr-adt-feed"))
    assert Pipeline(engine).run_once() == 1
    with Session(engine) as session:
        entry = session.scalars(select(JournalEntry)).one()
        assert (entry.status, entry.status_reason) == ("failed", "internal error (KeyError)")
        assert session.scalars(select(Delivery)).all() == []
        item = session.scalars(select(ExceptionItem)).one()
        assert item.summary == "internal error (KeyError)"
        assert item.owner_role == "analyst"


def test_the_queue_query_walks_the_status_index_without_sorting(tmp_path):
    """Regression: with only (status, received_at) to go on, every batch sorted the whole
    backlog to take its first few messages, so a pipeline that fell behind slowed down
    the further behind it was. (SQLite's plan is checked: PostgreSQL picks plans by
    table statistics.)"""
    from engine.store.database import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    upgrade(engine)
    query = Pipeline(engine, lane=(1, 2)).waiting_query(50)
    plan = sqlite_plan(engine, str(query.compile(engine, compile_kwargs={
        "literal_binds": True})))
    engine.dispose()
    assert "ix_journal_status_id" in plan and "TEMP B-TREE" not in plan, plan


def test_under_skip_dead_a_failed_message_holds_nothing_back(engine, tmp_path, monkeypatch):
    """A source whose catalog entry says ``ordering: skip_dead`` keeps what every source
    did before issue 14, item 2: the patient's next message is routed at once."""
    import yaml

    from engine import encoders
    from tests.delivery_config import update

    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "catalog", tmp_path / "catalog")
    feed = tmp_path / "catalog" / "connections" / "ehr-adt-feed.yaml"
    feed.write_text(yaml.safe_dump({**yaml.safe_load(feed.read_text()),
                                    "ordering": "skip_dead"}))
    sb = prepared(engine, tmp_path)
    admit = sb.ingest(Received(update("ADMIT", "MRN1", "A01"), "ehr-adt-feed")).journaled
    sb.ingest(Received(update("DISCHARGE", "MRN1", "A03"), "ehr-adt-feed"))
    real = encoders.ENCODERS["canonical-json"]

    def failing(record, delivery):
        if delivery.message_id == admit.message_id:
            raise KeyError("a defect")
        return real(record, delivery)

    monkeypatch.setitem(encoders.ENCODERS, "canonical-json", failing)
    assert Pipeline(engine).run_once() == 2
    with Session(engine) as session:
        assert dict(session.execute(
            select(JournalEntry.control_id, JournalEntry.status)).all()) == {
            "ADMIT": "failed", "DISCHARGE": "routed"}
