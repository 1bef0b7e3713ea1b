"""Rule-set versions at a point of their review, made through ChangeControl as the
REST API and the console make them: a draft with a small change (a route table's
description, which keeps every rule test passing), submitted, and previewed."""

from __future__ import annotations

import copy

from engine.change_control import ChangeControl
from engine.impact_preview import PreviewRunner
from tests.queue_rows import as_

ANALYTICS = "rules/routes/analytics.yaml"
NEW_DESCRIPTION = "Every event, de-identified, for the quality team's dashboards."


def draft(engine, author: str = "anna", editor: str | None = None,
          summary: str = "Describe the analytics feed better") -> int:
    """A draft by ``author`` whose analytics route table says what it is for better;
    the change made by ``editor`` when one is named."""
    versions = ChangeControl(engine)
    number = int(versions.create_draft(as_(author), summary)["version"])
    routes = _document(versions.content(number), ANALYTICS)
    data = {**copy.deepcopy(routes["data"]), "description": NEW_DESCRIPTION}
    versions.put_document(number, as_(editor or author), ANALYTICS, "routes", data)
    return number


def in_review(engine, author: str = "anna", editor: str | None = None,
              previewed: bool = True) -> int:
    """A version submitted for review; with its impact preview run, so every gate passes."""
    number = draft(engine, author, editor)
    versions = ChangeControl(engine)
    versions.submit(number, as_(author))
    if previewed:
        versions.request_preview(number, as_(author), {"limit": 50})
        PreviewRunner(engine).run_pending()
    return number


def _document(content: dict, path: str) -> dict:
    return next(doc for doc in content["documents"] if doc["path"] == path)
