"""Making a new file's name durable: a file created or renamed into a folder survives a
crash only once the folder itself has been flushed to disk."""

from __future__ import annotations

import os
from pathlib import Path


def sync_directory(directory: Path) -> None:
    """Flush ``directory``'s entries, so that a rename or link into it survives a crash."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
