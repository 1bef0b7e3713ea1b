"""Messages moving through Switchboard show in the throughput charts, on SQLite and
PostgreSQL: ingest counts what it receives and rejects, the pipeline's and the delivery
workers' reports count what is routed, delivered and failed with each delivery's
latency, and the recorder samples the outbox's queue; a running ``serve`` (pipeline in
a worker process, HTTP ingest in the web part) stores its counts when it stops."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select, update

from engine import metrics
from engine.delivery_workers import DeliveryWorker
from engine.ingest import Ingestor
from engine.journal import Journal, Received, now_utc
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.store.migrate import upgrade
from engine.store.models import Delivery
from engine.throughput import Throughput
from engine.throughput_rollup import ThroughputRecorder
from tests.delivery_config import (
    HTTP_FEED,
    HTTP_FEED_TOKEN_ENV,
    SINK,
    delivery_config,
)
from tests.delivery_config import update as message
from tests.engine.connectors.http_recorder import Reply, running
from tests.in_process_serve import serving
from tests.recording_sink import RecordingSink
from tests.waiting import wait_until

FEED = "ehr-adt-feed"
TOKEN = "http-feed-token-for-tests"


def test_a_pass_through_ingest_pipeline_and_delivery_shows_in_the_charts(
        engine: Engine, tmp_path: Path) -> None:
    with running() as sink:
        upgrade(engine)
        bootstrap(engine, delivery_config(tmp_path / "config", f"{sink.url}/events"))
        recorder = ThroughputRecorder(engine, sample_queue=True)
        report = recorder.reporting(metrics.report)
        journal = Journal(engine)
        worker = DeliveryWorker(engine, batch=10, report=report)
        try:
            ingestor, pipeline = Ingestor(journal, recorder), Pipeline(engine, report=report)
            for number in range(3):
                ingestor.ingest(Received(message(f"C{number}", f"MRN{number}"), FEED))
            ingestor.ingest(Received(b"this is not HL7", FEED))  # rejected: AR
            assert pipeline.run_once() == 3
            recorder.flush()  # three deliveries wait in the outbox
            sink.script(Reply(503))  # the first attempt fails and is retried
            while worker.run_once():
                with engine.begin() as connection:  # its retry is due at once
                    connection.execute(update(Delivery).where(Delivery.status == "retrying")
                                       .values(next_attempt_at=now_utc()))
            recorder.flush()
        finally:
            worker.close()
            journal.close()
            recorder.close()
    charts = Throughput(engine)
    overall, feed, out = (charts.series("hour", c).total for c in (None, FEED, SINK))
    assert (overall.received, overall.rejected, overall.routed, overall.delivered,
            overall.failed) == (4, 1, 3, 3, 1)
    assert (feed.received, feed.rejected, feed.routed, feed.delivered) == (4, 1, 3, 0)
    assert (out.received, out.delivered, out.failed) == (0, 3, 1)
    assert out.p50_ms is not None and out.p99_ms is not None
    assert 0 < out.p50_ms <= out.p99_ms
    assert (overall.p50_ms, overall.p99_ms) == (out.p50_ms, out.p99_ms)
    assert overall.queue_depth == out.queue_depth == 3
    assert feed.queue_depth == 0  # nothing is delivered to the feed
    assert charts.connections("hour") == [FEED, SINK]


def test_serve_stores_what_its_parts_counted_when_it_stops(
        engine: Engine, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(HTTP_FEED_TOKEN_ENV, TOKEN)
    sink = RecordingSink()
    sink.start()
    url = engine.url.render_as_string(hide_password=False)
    try:
        config = delivery_config(tmp_path / "config", sink.url, http_feed=True)
        # The pipeline in a worker process: its reports reach this one through a pipe.
        with serving(config, url, pipeline_workers=1, delivery_workers=1) as serve:
            assert serve.send("C1", "MRN1") == "AA"
            assert serve.send("C2", "MRN2") == "AA"
            status, _ = serve.ingest(HTTP_FEED, TOKEN, message("H1", "MRN3"),
                                     "application/hl7-v2")
            assert status == 202
            wait_until(lambda: delivered(engine) == 3, what="three deliveries")
    finally:
        sink.stop()
    charts = Throughput(engine)
    feed, web, out = (charts.series("hour", c).total for c in (FEED, HTTP_FEED, SINK))
    assert (feed.received, feed.routed) == (2, 2)
    assert (web.received, web.routed) == (1, 1)
    assert out.delivered == 3 and out.p99_ms is not None


def delivered(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Delivery)
                                     .where(Delivery.status == "delivered")) or 0)
