"""Issue 14, item 11: the example recovery procedure tells operators to run
``switchboard status``, which did not exist. It is a one-screen summary per
connection, read from the store on both backends: received, routed, failed, waiting
and the oldest waiting for a feed; delivered, failed, held, waiting and the oldest
waiting for a destination; open exceptions and the last error for each."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update

from engine.cli import main
from engine.journal import now_utc
from engine.status_report import read_status
from engine.store.models import Delivery
from tests.queue_rows import delivery, entry, exception_item, held_behind_failure, prepared


def _traffic(engine) -> None:
    routed = [entry(engine, "routed")[0] for _ in range(3)]
    entry(engine, "received")
    failed = entry(engine, "failed")[0]
    exception_item(engine, failed, connection_id="ehr-adt-feed")
    delivery(engine, routed[0], status="delivered", attempts=1)
    dead = delivery(engine, routed[1], status="dead")
    exception_item(engine, routed[1], dead)
    delivery(engine, routed[2], status="held", attempts=0)
    delivery(engine, routed[2], status="pending", attempts=0)
    delivery(engine, routed[0], destination="analytics-warehouse", status="delivered",
             attempts=1)


def test_status_sums_each_connection_from_the_store(engine):
    prepared(engine)
    _traffic(engine)
    rows = {row.connection: row for row in read_status(engine)}
    feed = rows["ehr-adt-feed"]
    assert (feed.received, feed.routed, feed.failed, feed.waiting, feed.open_exceptions) == (
        5, 3, 1, 1, 1)
    assert feed.oldest_waiting is not None
    lab = rows["clinic-north"]
    assert (lab.delivered, lab.failed, lab.held, lab.waiting, lab.open_exceptions) == (
        1, 1, 1, 1, 1)
    assert lab.last_error == "connection refused"
    assert lab.oldest_waiting is not None
    analytics = rows["analytics-warehouse"]
    assert (analytics.delivered, analytics.waiting, analytics.last_error) == (1, 0, None)
    # Every catalog connection has a row, traffic or not.
    assert "ehr-fhir" in rows and rows["ehr-fhir"].delivered == 0


def test_switchboard_status_prints_one_screen(engine, capsys):
    prepared(engine)
    _traffic(engine)
    url = engine.url.render_as_string(hide_password=False)
    assert main(["status", "--as", "olive", "--database", url]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["CONNECTION", "DIRECTION", "RECEIVED"]
    north = next(line for line in lines if line.startswith("clinic-north "))
    assert "connection refused" in north
    assert len(lines) < 60  # one screen
    assert main(["status", "--as", "olive", "--database", url, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"connection": "clinic-north", "delivered": 1, "failed": 1, "held": 1,
            "waiting": 1, "open_exceptions": 1}.items() <= next(
        r for r in rows if r["connection"] == "clinic-north").items()
    assert main(["status", "--as", "cora", "--database", url]) == 1  # a clinician



def test_a_feed_counts_the_messages_held_behind_a_failure(engine):
    """Issue 14, item 2: a feed's messages held behind a failed one of their patient
    (strict ordering) show as held, not lost among those received."""
    prepared(engine)
    entry(engine, "failed")
    entry(engine, "held")
    entry(engine, "held")
    feed = {row.connection: row for row in read_status(engine)}["ehr-adt-feed"]
    assert (feed.received, feed.failed, feed.held, feed.waiting) == (3, 1, 2, 0)


def test_a_destination_says_when_it_last_delivered_and_what_waits_behind_a_failure(engine):
    """Found in the operators' check: after the bed board came back and its dead letters
    were retried, its tile still showed the night's error in red; and the deliveries
    waiting behind a failure for the same patient read as ordinary waiting."""
    prepared(engine)
    dead, behind = held_behind_failure(engine)
    north = {row.connection: row for row in read_status(engine)}["clinic-north"]
    assert (north.waiting, north.behind_failure, north.failed) == (1, 1, 1)
    assert north.last_error == "connection refused" and north.last_error_at is not None
    assert north.last_delivered_at is None and not north.recovered
    # The dead letter is retried and delivered: the error stays on record, but as the past.
    with engine.begin() as connection:
        connection.execute(update(Delivery).where(Delivery.id.in_([dead, behind])).values(
            status="delivered", delivered_at=now_utc() + timedelta(seconds=1)))
    north = {row.connection: row for row in read_status(engine)}["clinic-north"]
    assert north.last_error == "connection refused" and north.recovered
    assert north.last_delivered_at is not None and north.behind_failure == 0
    feed = {row.connection: row for row in read_status(engine)}["ehr-adt-feed"]
    assert feed.last_received_at is not None
