"""Issue 14, item 4: a destination whose secret variable is unset was retried for ten
minutes as a transport error. It is a configuration error: named when the engine
starts, dead-lettered with the first failure whatever the policy allows, with one
exception item and a log line that name the variable."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml
from sqlalchemy import create_engine, select

from engine.store.models import Delivery, ExceptionItem
from tests.delivery_config import SINK, delivery_config
from tests.in_process_serve import serving
from tests.waiting import wait_until

VARIABLE = "SWITCHBOARD_TEST_UNSET_SINK_TOKEN"


def test_a_missing_secret_is_one_configuration_exception_named_at_start(
        tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    # Its port is closed, but nothing should ever try it: the failure comes first.
    config = delivery_config(tmp_path / "config", "http://127.0.0.1:9/events")
    entry = config / "catalog" / "connections" / f"{SINK}.yaml"
    document = yaml.safe_load(entry.read_text())
    document["endpoint"]["auth_secret_env"] = VARIABLE
    entry.write_text(yaml.safe_dump(document, sort_keys=False))
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    caplog.set_level(logging.WARNING)
    with serving(config, url, delivery_workers=1) as serve:
        started = [record for record in caplog.records
                   if VARIABLE in record.getMessage()
                   or getattr(record, "variable", None) == VARIABLE]
        assert started, "the engine did not name the unset variable when it started"
        caplog.clear()
        assert serve.send("SECRET-1", "MRN-1") == "AA"
        store = create_engine(url)
        try:
            def dead() -> Delivery | None:
                with store.connect() as connection:
                    return connection.execute(select(Delivery).where(
                        Delivery.status == "dead")).first()

            delivery = wait_until(dead, what="the delivery to be dead-lettered")
            with store.connect() as connection:
                items = connection.execute(select(ExceptionItem)).all()
        finally:
            store.dispose()
    # The test policy allows three attempts of every class: none is retried.
    assert (delivery.attempts, delivery.error_class) == (1, "configuration")
    assert VARIABLE in delivery.last_error
    assert len(items) == 1
    assert (items[0].error_class, items[0].connection_id) == ("configuration", SINK)
    assert VARIABLE in items[0].summary
    assert any(getattr(record, "variable", None) == VARIABLE for record in caplog.records)
