"""A drop folder polled by APScheduler. A file is read whole, every message in it is
journaled, and only after the last commit does the file move to ``done/`` (or to
``error/`` when a message in it was rejected). When the store cannot commit, the file
stays where it is and is tried again on the next poll: nothing is lost, and the
journal recognises the messages already taken as duplicates."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from jsonschema import Draft202012Validator

from engine.connectors import ConnectorError
from engine.ingest import Ingestor
from engine.journal import Kind, Received

SCHEMA: dict[str, Any] = json.loads((Path(__file__).parent / "schema.json").read_text())
_VALIDATOR = Draft202012Validator(SCHEMA)
_MESSAGE_START = re.compile(rb"(?:\r\n|\r|\n)+(?=MSH)")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DropFolderConfig:
    directory: Path
    pattern: str
    poll_seconds: float
    settle_seconds: float

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> DropFolderConfig:
        problems = sorted(e.message for e in _VALIDATOR.iter_errors(dict(config)))
        if problems:
            raise ConnectorError(f"file drop folder config is invalid: {'; '.join(problems)}")
        values = {k: v["default"] for k, v in SCHEMA["properties"].items() if "default" in v}
        values.update(config)
        return cls(Path(values["directory"]), str(values["pattern"]),
                   float(values["poll_seconds"]), float(values["settle_seconds"]))


class DropFolder:
    def __init__(self, ingestor: Ingestor, source_id: str, config: DropFolderConfig) -> None:
        self._ingestor = ingestor
        self._source_id = source_id
        self._config = config
        self._scheduler: BackgroundScheduler | None = None

    async def start(self) -> None:
        self._make_folders()
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(self.poll, "interval", seconds=self._config.poll_seconds,
                          max_instances=1, coalesce=True, id=f"drop-{self._source_id}")
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self, grace: float = 10.0) -> None:
        if self._scheduler is not None:
            scheduler, self._scheduler = self._scheduler, None
            await asyncio.to_thread(scheduler.shutdown, True)  # lets a poll in flight end

    @property
    def done(self) -> Path:
        return self._config.directory / "done"

    @property
    def error(self) -> Path:
        return self._config.directory / "error"

    def poll(self) -> int:
        """Take every settled file once; returns how many files were moved."""
        self._make_folders()
        moved = 0
        now = time.time()
        files = sorted((modified, path.name, path)
                       for path in self._config.directory.glob(self._config.pattern)
                       if (modified := _modified(path)) is not None)
        for modified, _name, path in files:
            if path.name.startswith("."):
                continue
            if now - modified < self._config.settle_seconds:
                continue  # still being written
            try:
                if self._take(path):
                    moved += 1
            except OSError as error:  # this file cannot be moved: the newer ones still go
                log.error("a file could not be taken; it stays for the next poll",
                          extra={"connection": self._source_id, "file": path.name,
                                 "error": type(error).__name__})
        return moved

    def _make_folders(self) -> None:
        for folder in (self._config.directory, self.done, self.error):
            folder.mkdir(parents=True, exist_ok=True)

    def _take(self, path: Path) -> bool:
        """Journal the file's messages and move it, unless another engine polling the
        same folder has it: a file is taken under an exclusive lock on it, and one
        that moved away meanwhile is skipped (the lock dies with a crashed engine)."""
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            return False
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if not _still_there(path, handle.fileno()):
                return False  # taken and moved by the other engine before the lock
            return self._journal_and_move(path, handle.read())

    def _journal_and_move(self, path: Path, data: bytes) -> bool:
        messages = [m for m in _MESSAGE_START.split(data) if m.strip()] or [data]
        rejected = False
        for raw in messages:
            result = self._ingestor.ingest(Received(raw, self._source_id, str(path.name)))
            if result.journaled is None:
                log.warning("store unavailable; file left for the next poll",
                            extra={"connection": self._source_id, "file": path.name})
                return False
            rejected = rejected or result.journaled.kind == Kind.REJECTED
        target = (self.error if rejected else self.done) / path.name
        os.replace(path, _unused(target))
        log.info("file taken", extra={"connection": self._source_id, "file": path.name,
                                      "messages": len(messages), "rejected": rejected})
        return True


def _modified(path: Path) -> float | None:
    """When a regular file was last written, or None when it is gone or not a file."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_mtime if stat.S_ISREG(status.st_mode) else None


def _still_there(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        return path.stat().st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _unused(target: Path) -> Path:
    """``target``, or a numbered variant when a file of that name was taken before."""
    candidate, number = target, 1
    while candidate.exists():
        candidate = target.with_name(f"{target.stem}.{number}{target.suffix}")
        number += 1
    return candidate
