"""The switchboard command, run in-process."""

from __future__ import annotations

import shutil

from engine.cli import main
from tests.samples import CORPUS, CORPUS_FILES


def test_demo_over_the_shipped_samples(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert f"{len(CORPUS_FILES)} MLLP frames from {len(CORPUS_FILES)} files" in out
    assert f"{len(CORPUS_FILES)} accepted, 0 rejected" in out
    assert "EVERYMAN" not in out  # a patient name in the samples: no PHI in the report


def test_demo_reports_a_broken_file_and_goes_on(tmp_path, capsys):
    shutil.copy(CORPUS / "python-hl7" / "sample_oru.hl7", tmp_path / "a.hl7")
    (tmp_path / "b.hl7").write_bytes(b"PID|1||not a message")
    assert main(["demo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 accepted, 1 rejected" in out
    assert "AR: segment 1: an HL7 v2 message must start with an MSH segment" in out


def test_demo_with_no_messages(tmp_path, capsys):
    assert main(["demo", str(tmp_path)]) == 1
    assert "No .hl7 files" in capsys.readouterr().out


def test_hl7_get(capsys):
    sample = str(CORPUS / "python-hl7" / "sample_oru.hl7")
    assert main(["hl7", "get", sample, "MSH-10", "OBX[*]-3.2", "ZZZ-1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "MSH-10\tCNTRL-3456", "OBX[*]-3.2\tGLUCOSE", "OBX[*]-3.2\tGLUCOSE", "ZZZ-1\t<absent>",
    ]


def test_hl7_ack_and_a_bad_path(capsys):
    sample = str(CORPUS / "python-hl7" / "sample_oru.hl7")
    assert main(["hl7", "ack", sample]) == 0
    assert "MSA|AA|CNTRL-3456" in capsys.readouterr().out
    assert main(["hl7", "get", sample, "PID.3"]) == 2
    assert "'PID.3' is not an HL7 path" in capsys.readouterr().err


def test_the_command_names_the_linter_knows_are_the_parser_s():
    """A recovery procedure may name only these (issue 14, item 11)."""
    import argparse

    from engine.cli import _parser
    from engine.command_names import COMMANDS

    (commands,) = [action.choices for action in _parser()._actions
                   if isinstance(action, argparse._SubParsersAction)]
    assert set(commands) == COMMANDS
