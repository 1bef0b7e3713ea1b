"""Golden files: output compared byte for byte with a file kept in the repository.
After a deliberate change, ``SWITCHBOARD_UPDATE_GOLDEN=1`` rewrites the files; review
the diff before committing it."""

from __future__ import annotations

import os
from pathlib import Path


def matches_golden(output: bytes, golden: Path) -> bool:
    if os.environ.get("SWITCHBOARD_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(output)
    assert golden.exists(), f"{golden.name} is missing: run with SWITCHBOARD_UPDATE_GOLDEN=1"
    return output == golden.read_bytes()
