"""SWITCHBOARD_INSTANCE moves the whole instance folder: the embedded store as well as
the audit key beside it. When the command line put the store in ./instance but the key
in $SWITCHBOARD_INSTANCE, two instances shared one store under two keys, and the audit
chain read as edited."""

from __future__ import annotations

import pytest

from engine.cli import main


@pytest.mark.parametrize("command", [["db", "upgrade"], ["users", "list"],
                                     ["messages", "list", "--as", "nobody"],
                                     ["audit", "verify"]])
def test_the_command_line_keeps_its_store_in_the_instance_folder(tmp_path, monkeypatch,
                                                                 command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWITCHBOARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("SWITCHBOARD_INSTANCE", str(tmp_path / "elsewhere"))
    if command != ["db", "upgrade"]:
        main(["db", "upgrade"])
    main(command)
    assert (tmp_path / "elsewhere" / "switchboard.db").exists()
    assert not (tmp_path / "instance").exists()
