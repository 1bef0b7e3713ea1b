"""The file drop folder on a real folder and a real database (SQLite and PostgreSQL):
files move only after their messages are committed."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.connectors import ConnectorError, source_factory
from engine.connectors.file import DropFolder, DropFolderConfig
from engine.ingest import Ingestor
from engine.journal import Journal
from engine.store.migrate import upgrade
from engine.store.models import JournalEntry
from tests.delivery_config import update
from tests.samples import CORPUS


def folder_source(engine, directory: Path, settle: float = 0.0) -> DropFolder:
    upgrade(engine)
    return DropFolder(Ingestor(Journal(engine)), "lab-drop",
                      DropFolderConfig.from_mapping({"directory": str(directory),
                                                     "settle_seconds": settle}))


def old(path: Path) -> None:
    past = time.time() - 60
    os.utime(path, (past, past))


def test_file_with_two_messages_is_journaled_then_moved_to_done(engine, tmp_path):
    source = folder_source(engine, tmp_path)
    asyncio.run(source.start())
    try:
        two = (CORPUS / "fhir-converter/ADT-A01-01.hl7").read_bytes() + b"\n" + (
            CORPUS / "python-hl7/sample_oru.hl7").read_bytes()
        (tmp_path / "batch.hl7").write_bytes(two)
        assert source.poll() == 1
    finally:
        asyncio.run(source.stop())
    assert (tmp_path / "done" / "batch.hl7").read_bytes() == two
    assert not (tmp_path / "batch.hl7").exists()
    with Session(engine) as session:
        rows = session.scalars(select(JournalEntry)).all()
        assert sorted(r.message_type for r in rows) == ["ADT", "ORU"]
        assert {r.source for r in rows} == {"lab-drop"}


def test_rejected_content_moves_to_error(engine, tmp_path):
    source = folder_source(engine, tmp_path)
    (tmp_path / "junk.hl7").write_bytes(b"this is not HL7")
    assert source.poll() == 1
    assert (tmp_path / "error" / "junk.hl7").exists()


def test_a_file_still_being_written_waits(engine, tmp_path):
    source = folder_source(engine, tmp_path, settle=30)
    fresh = tmp_path / "fresh.hl7"
    fresh.write_bytes((CORPUS / "python-hl7/sample_oru.hl7").read_bytes())
    assert source.poll() == 0 and fresh.exists()
    old(fresh)
    assert source.poll() == 1


def test_same_name_again_does_not_overwrite_done(engine, tmp_path):
    source = folder_source(engine, tmp_path)
    for _ in range(2):
        (tmp_path / "a.hl7").write_bytes((CORPUS / "python-hl7/sample_oru.hl7").read_bytes())
        source.poll()
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.1.hl7", "a.hl7"]


def test_registered_by_name_and_config_checked(tmp_path):
    assert source_factory("file")
    with pytest.raises(ConnectorError, match="'directory' is a required property"):
        DropFolderConfig.from_mapping({})


def test_two_engines_polling_one_folder_take_each_file_once(engine, tmp_path):
    """Scale-out: each engine runs its own poll of a shared drop folder. A file is
    taken by one of them; the other skips it, and neither poll fails."""
    first, second = folder_source(engine, tmp_path), folder_source(engine, tmp_path)
    sample = (CORPUS / "fhir-converter/ADT-A01-01.hl7").read_bytes()
    for number in range(40):
        path = tmp_path / f"adt-{number:02}.hl7"
        path.write_bytes(sample.replace(b"|P|", f"-{number}|P|".encode(), 1))
        old(path)
    start = threading.Barrier(2)
    taken: list[int] = []
    failures: list[BaseException] = []

    def poll(source: DropFolder) -> None:
        start.wait()
        try:
            taken.append(source.poll())
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=poll, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert sum(taken) == 40
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [
        f"adt-{number:02}.hl7" for number in range(40)]
    assert list((tmp_path / "error").iterdir()) == []


def test_a_file_that_cannot_be_journaled_does_not_stop_the_newer_ones(engine, tmp_path):
    """Defect 2: a file whose message had 0xFF in PID-3 made the poll raise, every
    poll, before it reached the newer, valid files behind it."""
    source = folder_source(engine, tmp_path)
    bad = update("BAD-1", "MRN-X").replace(b"MRN-X", b"MRN\xff")  # in PID-3
    (tmp_path / "a-bad.hl7").write_bytes(bad)
    old(tmp_path / "a-bad.hl7")
    good = (CORPUS / "python-hl7/sample_oru.hl7").read_bytes()
    (tmp_path / "b-good.hl7").write_bytes(good)
    assert source.poll() == 2
    assert (tmp_path / "error" / "a-bad.hl7").read_bytes() == bad
    assert (tmp_path / "done" / "b-good.hl7").read_bytes() == good
    with Session(engine) as session:
        statuses = sorted(session.scalars(select(JournalEntry.status)))
    assert statuses == ["received", "rejected"]


def test_a_long_file_name_is_kept_whole_on_both_stores(engine, tmp_path):
    """One set of limits (issue 13): the journal's peer holds a drop folder's file name,
    which may be up to 255 bytes; PostgreSQL refused one over 128, SQLite kept it."""
    source = folder_source(engine, tmp_path)
    name = "referral-" + "x" * 236 + ".hl7"  # 249 characters
    (tmp_path / name).write_bytes((CORPUS / "python-hl7/sample_oru.hl7").read_bytes())
    assert source.poll() == 1
    with Session(engine) as session:
        entry = session.scalars(select(JournalEntry)).one()
    assert (entry.status, entry.peer) == ("received", name)


def test_a_file_that_cannot_be_moved_stays_and_the_newer_ones_go(engine, tmp_path, monkeypatch):
    """Nothing stops the line: a file the poll cannot move (a fault injected into the
    move) stays for the next poll, and the files after it are still taken."""
    from engine.connectors.file import drop_folder

    source = folder_source(engine, tmp_path)
    first, second = tmp_path / "a-first.hl7", tmp_path / "b-second.hl7"
    first.write_bytes(update("MOVE-1", "MRN-1"))
    old(first)
    second.write_bytes(update("MOVE-2", "MRN-2"))
    replace = os.replace

    def refusing(src, dst):
        if str(src) == str(first):
            raise PermissionError("the move is refused by the test")
        replace(src, dst)

    monkeypatch.setattr(drop_folder.os, "replace", refusing)
    assert source.poll() == 1
    assert first.exists() and (tmp_path / "done" / "b-second.hl7").exists()
