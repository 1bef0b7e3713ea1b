"""Import every connector, so that each one registers itself."""

from __future__ import annotations

import engine.connectors.file
import engine.connectors.mllp  # noqa: F401
