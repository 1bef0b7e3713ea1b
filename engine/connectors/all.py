"""Import every connector, so that each one registers itself."""

from __future__ import annotations

import engine.connectors.fhir
import engine.connectors.file
import engine.connectors.http
import engine.connectors.mllp
import engine.connectors.task_queue  # noqa: F401
