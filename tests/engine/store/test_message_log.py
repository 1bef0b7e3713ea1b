"""Issue 14, item 5: why a delivery is retrying. ``/api/messages/<id>`` showed
``retrying`` with no reason, and failures never reached the log. Each delivery shows
its last error (free of PHI), its attempts and its next attempt time, in the API and in
``switchboard messages list|show``; each failure is logged with its connection, error
class and attempt, and no PHI."""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime

from engine.cli import main
from engine.connectors.sink import DeliveryFailed
from engine.journal import now_utc
from engine.message_log import MessageLog
from engine.outbox import Attempt, Outbox
from engine.rules.exception_policy import ErrorClass
from tests.engine.store.test_outbox import RULES, deliveries, journal
from tests.queue_rows import prepared

REASON = "HTTP 503 Service Unavailable from clinic-north"


def _retrying(engine) -> tuple[str, int]:
    """One message whose delivery failed once and waits for its retry; (message id,
    delivery id)."""
    journal_id = journal(engine, 1, "p1")[0]
    delivery_id = deliveries(engine, [journal_id])[0]
    outbox = Outbox(engine, lease=60, rng=random.Random(7))
    (chain,) = outbox.claim(limit=10)
    failure = DeliveryFailed(ErrorClass.TRANSPORT_ERROR, REASON)
    outbox.record([Attempt(chain[0], now_utc(), failure)], [], RULES)
    message_id = MessageLog(engine).list({}, 1, 10).items[0]["message_id"]
    return message_id, delivery_id


def test_a_retrying_delivery_says_why_and_when_it_goes_again(engine, caplog):
    prepared(engine)
    caplog.set_level(logging.INFO, logger="switchboard")
    before = now_utc()
    message_id, delivery_id = _retrying(engine)
    (delivery,) = MessageLog(engine).show(message_id)["deliveries"]
    assert delivery["status"] == "retrying"
    assert delivery["attempts"] == 1
    assert delivery["error_class"] == "transport_error"
    assert delivery["last_error"] == REASON
    assert datetime.fromisoformat(delivery["next_attempt_at"]) > before
    failures = [r for r in caplog.records if getattr(r, "delivery_id", None) == delivery_id]
    assert [(r.connection, r.error_class, r.attempt) for r in failures] == [
        ("clinic-north", "transport_error", 1)]


def test_messages_list_and_show_on_the_command_line(engine, capsys):
    prepared(engine)
    message_id, _ = _retrying(engine)
    url = engine.url.render_as_string(hide_password=False)
    assert main(["messages", "list", "--as", "olive", "--database", url]) == 0
    listing = capsys.readouterr().out
    assert message_id in listing and "routed" in listing
    assert main(["messages", "show", message_id, "--as", "olive", "--database", url]) == 0
    shown = capsys.readouterr().out
    assert "clinic-north" in shown and "retrying" in shown and REASON in shown
    assert "next attempt" in shown
    assert main(["messages", "show", message_id, "--as", "olive", "--database", url,
                 "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["deliveries"][0]["last_error"] == REASON
    # A clinician reads tasks, not the message log.
    assert main(["messages", "list", "--as", "cora", "--database", url]) == 1
    assert main(["messages", "show", "no-such-id", "--as", "olive", "--database", url]) == 1
