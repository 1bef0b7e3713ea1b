from __future__ import annotations

import json
import logging

from engine.log_format import QUIETED, JsonFormatter, configure_logging


def render(**kwargs) -> dict:
    record = logging.LogRecord("switchboard.test", logging.WARNING, __file__, 1,
                               "frame refused", None, kwargs.pop("exc_info", None))
    for key, value in kwargs.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))


def test_one_json_object_with_extras():
    entry = render(peer="10.1.2.3", connection="ehr-adt-feed", size_bytes=12)
    assert entry["event"] == "frame refused" and entry["level"] == "warning"
    assert (entry["peer"], entry["connection"], entry["size_bytes"]) == (
        "10.1.2.3", "ehr-adt-feed", 12)
    assert entry["ts"].endswith("+00:00")


def test_objects_and_exception_text_stay_out():
    try:
        raise ValueError("PID-5 DOE^JANE is wrong")
    except ValueError:
        import sys

        entry = render(message_object=object(), exc_info=sys.exc_info())
    assert "message_object" not in entry
    assert entry["error"] == "ValueError"
    assert "DOE" not in json.dumps(entry)


def test_library_info_lines_that_could_carry_a_query_string_are_quieted():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging()
        # werkzeug's request lines quote the query string (?patient=...).
        assert not logging.getLogger("werkzeug").isEnabledFor(logging.INFO)
        assert not logging.getLogger("apscheduler").isEnabledFor(logging.INFO)
        assert logging.getLogger("werkzeug").isEnabledFor(logging.WARNING)
        assert logging.getLogger("switchboard.web").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in QUIETED:
            logging.getLogger(name).setLevel(logging.NOTSET)
