"""Structured JSON logs, one object per line. Log records carry identifiers (message
ids, connection ids, control ids, peers), never message content: callers pass
``extra={...}`` with such fields, and the formatter drops anything it does not know
how to render rather than risk dumping an object."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; everything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_SCALARS = (str, int, float, bool, type(None))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, _SCALARS):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception text can quote message content.
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


# Libraries whose INFO lines are not ours to keep: werkzeug's request lines carry the
# query string, which can name a patient (/api/messages?patient=...), and APScheduler
# reports every run of every job. The web app logs its own requests without queries.
QUIETED = ("werkzeug", "apscheduler")


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_libraries()


def quiet_libraries() -> None:
    for name in QUIETED:
        logging.getLogger(name).setLevel(logging.WARNING)
