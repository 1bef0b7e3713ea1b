"""``switchboard rules ...`` change control against the web app on a real socket,
acting with each user's token: import a draft, submit, preview, approve, publish,
diff, history, rollback and export, with the server's refusals reported."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from werkzeug.serving import make_server

from admin import create_app
from engine.cli import main
from engine.rules.export import import_content
from tests.queue_rows import ROOT, prepared


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    from engine.store.database import open_engine

    engine = open_engine(url)
    tokens = prepared(engine)
    engine.dispose()
    # The app runs its preview runner as in production (not TESTING).
    app = create_app({"DATABASE_URL": url, "CONFIG_ROOT": str(ROOT)})
    web = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{web.server_port}", tokens
    finally:
        web.shutdown()
        thread.join(5)
        app.extensions["switchboard.previews"].stop()
        app.extensions["switchboard"].close()


def run(capsys, monkeypatch, server, user, *argv) -> tuple[int, str, str]:
    url, tokens = server
    monkeypatch.setenv("SWITCHBOARD_TOKEN", tokens[user])
    code = main(["rules", *argv, "--url", url])
    out, err = capsys.readouterr()
    return code, out, err


def edited_copy(tmp_path: Path) -> Path:
    """The shipped configuration with one route table reworded."""
    code_root = tmp_path / "edited"
    for part in ("rules", "catalog"):
        import shutil

        shutil.copytree(ROOT / part, code_root / part)
    routes = code_root / "rules" / "routes" / "analytics.yaml"
    data = yaml.safe_load(routes.read_text())
    data["description"] = "Every event, de-identified, for the quality team."
    routes.write_text(yaml.safe_dump(data, sort_keys=False))
    return code_root


def test_a_change_from_import_to_publish_and_back(server, capsys, monkeypatch, tmp_path):
    r = lambda user, *argv: run(capsys, monkeypatch, server, user, *argv)  # noqa: E731
    code, out, _ = r("anna", "import", str(edited_copy(tmp_path)),
                     "--summary", "Name the quality team")
    assert code == 0 and out.startswith("v2  draft")
    assert r("anna", "submit", "2")[0] == 0
    code, _, err = r("abe", "approve", "2")
    assert code == 1 and "409" in err and "FAIL preview" in err
    assert err.count("run the impact preview") == 1  # the hint, said once
    code, out, _ = r("anna", "preview", "2", "--limit", "10")
    assert code == 0 and "impact preview" in out and ": done" in out
    code, _, err = r("anna", "approve", "2")
    assert code == 1 and "403" in err
    assert r("abe", "approve", "2", "--reason", "wording only")[0] == 0
    code, out, _ = r("anna", "diff", "1", "2")
    assert code == 0 and "analytics" in out
    assert r("abe", "publish", "2")[0] == 0
    code, out, _ = r("carl", "history")
    lines = out.splitlines()
    assert lines[0].startswith("v2  published") and lines[1].startswith("v1  superseded")
    code, out, _ = r("abe", "rollback", "1", "--reason", "the desk asked for the old text")
    assert code == 0 and out.startswith("v3  published")
    target = tmp_path / "export"
    assert r("carl", "export", str(target))[0] == 0
    assert import_content(target) == import_content(ROOT)
    again = tmp_path / "again"
    assert r("carl", "export", str(again), "--version", "3")[0] == 0
    files = sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((target / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_without_a_token_the_command_says_how_to_get_one(monkeypatch, capsys):
    monkeypatch.delenv("SWITCHBOARD_TOKEN", raising=False)
    monkeypatch.delenv("SWITCHBOARD_TOKEN_FILE", raising=False)
    assert main(["rules", "history", "--url", "http://127.0.0.1:9"]) == 2
    assert "SWITCHBOARD_TOKEN" in capsys.readouterr().err


def test_a_token_file_is_read_and_an_unknown_token_is_refused(server, capsys, tmp_path):
    url, tokens = server
    token_file = tmp_path / "token"
    token_file.write_text(tokens["carl"] + "\n")
    assert main(["rules", "history", "--url", url, "--token-file", str(token_file)]) == 0
    token_file.write_text("not-a-token")
    assert main(["rules", "history", "--url", url, "--token-file", str(token_file)]) == 1
    assert "401" in capsys.readouterr().err
