"""Export and import of a rule-set version's content: lossless and byte-stable."""

from __future__ import annotations

import base64
import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.rules.export import (
    ExportError,
    ImportRefusedError,
    export_files,
    import_content,
    write_export,
)
from engine.rules.snapshot import content_hash
from engine.rules.source import ConfigurationError

# The project root is itself a configuration root (rules/ and catalog/).
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def repo_content() -> dict[str, Any]:
    return import_content(ROOT)


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _content(
    documents: list[tuple[str, str, Any]],
    concept_maps: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """Content as ``to_content`` builds it, from (path, kind, data) documents."""
    return {
        "documents": [
            {"path": path, "kind": kind, "data": data}
            for path, kind, data in sorted(documents, key=lambda doc: doc[0])
        ],
        "concept_maps": dict(sorted((concept_maps or {}).items())),
        "files": {
            path: base64.b64encode(data).decode("ascii")
            for path, data in sorted((files or {}).items())
        },
    }


def _typed(value: Any) -> Any:
    """``value`` with its types spelled out: ``1``, ``1.0`` and ``True`` differ."""
    if isinstance(value, dict):
        return ("dict", sorted((key, _typed(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", [_typed(item) for item in value])
    return (type(value).__name__, repr(value))


def _round_trip(content: dict[str, Any], folder: Path) -> dict[str, Any]:
    write_export(content, folder)
    return import_content(folder)


def _routes(data: Any, path: str = "rules/routes/r.yaml") -> tuple[str, str, Any]:
    return (path, "routes", data)


# -- The shipped configuration -----------------------------------------------------------


def test_the_repository_configuration_round_trips(
    repo_content: dict[str, Any], tmp_path: Path
) -> None:
    written = write_export(repo_content, tmp_path / "export")

    assert import_content(tmp_path / "export") == repo_content
    assert content_hash(import_content(tmp_path / "export")) == content_hash(repo_content)
    assert written == sorted(_tree(tmp_path / "export"))
    assert len(repo_content["documents"]) > 40 and len(repo_content["files"]) > 10


def test_two_exports_of_the_same_content_are_byte_identical(
    repo_content: dict[str, Any], tmp_path: Path
) -> None:
    write_export(repo_content, tmp_path / "first")
    write_export(copy.deepcopy(repo_content), tmp_path / "second")

    first, second = _tree(tmp_path / "first"), _tree(tmp_path / "second")
    assert set(first) == set(second)
    assert all(first[path] == second[path] for path in first)
    assert first == export_files(repo_content)


def test_exporting_an_import_of_an_export_gives_the_same_bytes(
    repo_content: dict[str, Any], tmp_path: Path
) -> None:
    write_export(repo_content, tmp_path / "first")
    write_export(import_content(tmp_path / "first"), tmp_path / "second")

    assert _tree(tmp_path / "second") == _tree(tmp_path / "first")


def test_key_order_in_the_content_does_not_change_the_export(
    repo_content: dict[str, Any],
) -> None:
    # A version read back from the database need not keep the order keys were written in.
    def reversed_keys(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: reversed_keys(value[key]) for key in reversed(list(value))}
        if isinstance(value, list):
            return [reversed_keys(item) for item in value]
        return value

    assert export_files(reversed_keys(repo_content)) == export_files(repo_content)


def test_shared_objects_are_written_without_anchors() -> None:
    # YAML anchors load as shared objects; JSON from the database never shares.
    shared = ["ehr", "lab"]
    content = _content([_routes({"id": "r", "a": shared, "b": shared})])

    assert export_files(content) == export_files(copy.deepcopy(content))
    assert b"&" not in export_files(content)["rules/routes/r.yaml"]


def test_message_files_are_exported_as_the_repository_holds_them(
    repo_content: dict[str, Any],
) -> None:
    files = export_files(repo_content)

    assert "rules/tests/messages/python-hl7/sample_oru.hl7" in files  # CR line ends
    assert [path for path in repo_content["files"]
            if files[path] != (ROOT / path).read_bytes()] == []


def test_concept_map_sheets_are_exported_as_the_repository_holds_them(
    repo_content: dict[str, Any],
) -> None:
    files = export_files(repo_content)

    assert [path for path in repo_content["concept_maps"]
            if files[path] != (ROOT / path).read_bytes()] == []


# -- The YAML format ----------------------------------------------------------------------


def test_documents_are_written_in_one_fixed_format() -> None:
    data = {
        "rows": [{"to": ["ehr"], "when": "no"}], "description": "Two\nlines\n", "id": "r",
        "count": 3, "ratio": 1.0, "on": True, "valid_from": "2026-11-24", "note": "",
        "empty": [], "nel": "a\x85b",
    }

    assert export_files(_content([_routes(data)]))["rules/routes/r.yaml"].decode() == (
        "id: r\n"
        "description: |\n"
        "  Two\n"
        "  lines\n"
        "count: 3\n"
        "empty: []\n"
        'nel: "a\\Nb"\n'
        "note: ''\n"
        "'on': true\n"
        "ratio: 1.0\n"
        "rows:\n"
        "  - to:\n"
        "      - ehr\n"
        "    when: 'no'\n"
        "valid_from: '2026-11-24'\n"
    )


TRICKY = [
    # YAML 1.1 reads these as booleans, null, numbers or dates unless they are quoted.
    "no", "No", "NO", "yes", "on", "off", "y", "n", "true", "False", "null", "Null", "~", "",
    "0123", "0128", "0x1F", "0o17", "1e3", "1_000", "1:30", "-1", "+1", ".5", ".inf", ".nan",
    "2026-11-24", "2026-11-24T10:15:00-05:00", "2026-11-24 10:15:00", "20261124101500-0500",
    # YAML syntax at the start or inside a string.
    "#not a comment", "a #b", "- not a list", "key: not a map", "&anchor", "*alias", "!tag",
    "%directive", "@at", "`tick", "'single'", '"double"', "<<", "=", "?", "? x", "[a]", "{a}",
    "|", ">", "MSH|^~\\&|EHR|RIVERSIDE",
    # Spaces, line ends and other characters a block or plain scalar could lose.
    " leading", "trailing ", "  ", "two\nlines\n", "no final newline\nx", "\nfirst line empty",
    " indented first line\nnext\n", "trailing space \nnext", "blank lines kept\n\n\n", "\n",
    "tab\there", "cr\rand crlf\r\n", "NEL\x85line", "line\u2028separator", "\ufeffbom",
    "null byte\x00", "bell\x07", "Zoë Ñandú 日本 🙂", "x" * 300, "long " * 100,
    # Numbers, booleans, null and containers: each must keep its type.
    0, 123, -7, 2**70, 0.0, -0.0, 1.5, 1000.0, 1e-7, 1e300, True, False, None,
    [], {}, [1, "1", 1.0, True, None], {"a": [{"b": None}], "": [], "no": {"on": "off"}},
]


@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_a_tricky_value_comes_back_with_its_type(value: Any, tmp_path: Path) -> None:
    data: dict[str, Any] = {"id": "r", "value": value, "in_a_list": [value, [value]]}
    if isinstance(value, str):
        data[value] = {"nested": value}
    content = _content([_routes(data)])

    back = _round_trip(content, tmp_path)

    assert _typed(back["documents"][0]["data"]) == _typed(data)
    assert back == content and content_hash(back) == content_hash(content)


_JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([value for value in TRICKY if isinstance(value, str)])
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_any_value_a_version_can_store_is_written_and_read_back_exactly(value: Any) -> None:
    data = {"id": "r", "value": value}

    text = export_files(_content([_routes(data)]))["rules/routes/r.yaml"]

    assert _typed(yaml.safe_load(text.decode("utf-8"))) == _typed(data)


# -- Sheets and message files as exact bytes ---------------------------------------------

SHEET_HEADER = "HL7 v2,,,Condition (IF True),,,HL7 FHIR\nCode,Text,,,,,Code\n"


@pytest.mark.parametrize("sheet", [
    SHEET_HEADER + "F,Female,,,,,female\n",
    SHEET_HEADER + "F,Female,,,,,female",  # no final newline
    "\ufeff" + SHEET_HEADER + "F,Zoë,,,,,female\n\n",  # byte-order mark, blank line
    SHEET_HEADER + 'F,"two\nlines",,,,,female\n',  # a quoted cell spanning lines
    "not a concept map sheet\n",  # kept for the linter to report, like any draft
], ids=["plain", "no-final-newline", "bom-unicode-blank-line", "multi-line-cell", "invalid"])
def test_a_concept_map_sheet_comes_back_exactly(sheet: str, tmp_path: Path) -> None:
    path = "rules/mappings/concept-maps/sex.csv"
    content = _content([], concept_maps={path: sheet})

    assert _round_trip(content, tmp_path) == content
    assert (tmp_path / path).read_bytes() == sheet.encode("utf-8")


@pytest.mark.parametrize("message", [
    b"MSH|^~\\&|EHR|RIVERSIDE\rPID|1||MRN1\r",  # HL7's own segment separator
    b"MSH|^~\\&|EHR|RIVERSIDE\r\nPID|1||MRN1\r\n",
    b"MSH|^~\\&|EHR|RIVERSIDE\nPID|1||MRN1",
    b"\xef\xbb\xbfMSH|^~\\&|EHR|RIVERSIDE\rPID|1||Zo\xc3\xab\r",  # UTF-8 with BOM
    b"MSH|^~\\&|EHR|RIVERSIDE\rPID|1||Zo\xeb\r",  # Latin-1: not UTF-8 at all
    b"\x0bMSH|^~\\&|EHR\r\x1c\r",  # MLLP framing bytes
    b"",
], ids=["cr", "crlf", "lf-no-final", "utf8-bom", "latin-1", "mllp-frame", "empty"])
def test_a_test_message_file_comes_back_exactly(message: bytes, tmp_path: Path) -> None:
    tests = {"id": "t", "cases": [{"id": "c", "message": {"file": "messages/m.hl7"}}]}
    content = _content([("rules/tests/t.yaml", "tests", tests)],
                       files={"rules/tests/messages/m.hl7": message})

    assert _round_trip(content, tmp_path) == content
    assert (tmp_path / "rules/tests/messages/m.hl7").read_bytes() == message


# -- Where an export is written -----------------------------------------------------------

SMALL = _content([_routes({"id": "r", "rows": []})])


def test_an_export_is_refused_in_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")

    with pytest.raises(ExportError, match=r"is not empty\. Export into a new or empty folder"):
        write_export(SMALL, tmp_path)
    assert _tree(tmp_path) == {"notes.txt": b"mine"}


def test_an_export_is_refused_onto_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")

    with pytest.raises(ExportError, match="is a file, not a folder"):
        write_export(SMALL, tmp_path / "file")


@pytest.mark.parametrize("make_target", [
    lambda base: base / "new" / "folder",
    lambda base: base,
], ids=["missing", "empty"])
def test_an_export_goes_into_a_missing_or_empty_folder(make_target: Any, tmp_path: Path) -> None:
    target = make_target(tmp_path)

    assert write_export(SMALL, target) == ["rules/routes/r.yaml"]
    assert import_content(target) == SMALL


def test_replacing_an_export_leaves_nothing_of_the_previous_version(
    repo_content: dict[str, Any], tmp_path: Path
) -> None:
    write_export(repo_content, tmp_path)

    write_export(SMALL, tmp_path, replace=True)

    assert _tree(tmp_path) == export_files(SMALL)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")
                  if path.is_dir()) == ["rules", "rules/routes"]


def test_replacing_keeps_files_that_are_not_part_of_a_version(
    repo_content: dict[str, Any], tmp_path: Path
) -> None:
    for top in ("rules", "catalog"):
        shutil.copytree(ROOT / top, tmp_path / top)
    kept = ["rules/schema/routes.schema.json", "rules/README.md", "catalog/README.md",
            "rules/tests/messages/fhir-converter/LICENSE"]

    write_export(SMALL, tmp_path, replace=True)

    assert import_content(tmp_path) == SMALL
    assert [path for path in kept if (tmp_path / path).read_bytes() != (ROOT / path).read_bytes()
            ] == []
    assert not (tmp_path / "catalog/connections").exists()


# -- What is refused ------------------------------------------------------------------------


def _root(tmp_path: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)
    return tmp_path


TESTS_NAMING = b"id: t\ncases:\n  - id: c\n    message: {file: %s}\n"


@pytest.mark.parametrize(("files", "message"), [
    ({"rules/routes/bad.yaml": b"id: r\nrows: [unclosed\n"},
     "rules/routes/bad.yaml: line 3, column 1: not valid YAML: expected ',' or ']'"),
    ({"rules/routes/bad.yaml": b"id: r\n  bad: indent\n"},
     "rules/routes/bad.yaml: line 2, column 6: not valid YAML: mapping values are not allowed"),
    ({"catalog/connections/bad.yaml": b"id: caf\xe9\n"},
     "catalog/connections/bad.yaml: (document): cannot be read: 'utf-8' codec can't decode"),
    ({"rules/mappings/concept-maps/bad.csv": b"HL7 v2\nCode\n\xe9\n"},
     "rules/mappings/concept-maps/bad.csv: (document): cannot be read"),
    ({"rules/tests/t.yaml": TESTS_NAMING % b"messages/missing.hl7"},
     "rules/tests/t.yaml: cases[0].message.file: no such message file: messages/missing.hl7"),
], ids=["unclosed-list", "bad-indent", "not-utf8", "sheet-not-utf8", "missing-message"])
def test_a_root_that_cannot_be_read_whole_is_refused(
    files: dict[str, bytes], message: str, tmp_path: Path
) -> None:
    root = _root(tmp_path, {"rules/routes/ok.yaml": b"id: ok\n", **files})

    with pytest.raises(ImportRefusedError) as refused:
        import_content(root)
    assert f"{root} cannot be imported: 1 file(s) could not be read: {message}" in str(
        refused.value)
    assert str(refused.value).endswith(
        "Fix these files and import again: a draft is made only from a root read whole")


@pytest.mark.parametrize(("files", "message"), [
    ({"rules/routes/r.yaml": b"id: r\nvalid_from: 2026-11-24\n"},
     "rules/routes/r.yaml: valid_from: datetime.date(2026, 11, 24) is a date, which a version "
     "cannot store (quote it in the YAML file to keep it as text)"),
    ({"rules/mappings/tables/sex.yaml": b"id: sex\nmap: {1: male, 2: female}\n"},
     "rules/mappings/tables/sex.yaml: map: the key 1 is not text (quote it in the YAML file)"),
    ({"rules/routes/r.yaml": b"id: r\nrows: [{limit: .nan}]\n"},
     "rules/routes/r.yaml: rows[0].limit: nan is not a finite number"),
    ({"rules/routes/r.yaml": b"id: r\nblob: !!binary aGk=\n"},
     "rules/routes/r.yaml: blob: b'hi' is a bytes"),
    ({"rules/tests/t.yaml": TESTS_NAMING % b"../../samples/m.hl7", "samples/m.hl7": b"MSH|"},
     "samples/m.hl7: outside rules/ and catalog/, the folders a version is exported to"),
], ids=["date", "number-key", "nan", "binary", "message-outside-rules"])
def test_a_root_whose_content_could_not_come_back_is_refused(
    files: dict[str, bytes], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ImportRefusedError) as refused:
        import_content(_root(tmp_path, files))
    assert message in str(refused.value)


@pytest.mark.parametrize("naming", ["../../../m.hl7", "{outside}/m.hl7"], ids=["dots", "absolute"])
def test_a_message_file_outside_the_root_is_refused(naming: str, tmp_path: Path) -> None:
    # read_rule_source reports such names instead of reading them; a draft never holds them.
    (tmp_path / "m.hl7").write_bytes(b"MSH|")
    named = naming.format(outside=tmp_path).encode()
    root = _root(tmp_path / "root", {"rules/tests/t.yaml": TESTS_NAMING % named})

    with pytest.raises(ImportRefusedError, match="m\\.hl7 is outside the configuration root"):
        import_content(root)


def test_a_folder_without_rules_or_catalog_is_not_a_configuration(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="holds neither rules/ nor catalog/"):
        import_content(tmp_path)


@pytest.mark.parametrize(("content", "message"), [
    (_content([_routes({"id": "r"}, "/etc/r.yaml")]),
     "/etc/r.yaml: not a plain relative path inside the configuration root"),
    (_content([_routes({"id": "r"}, "rules/routes/../routes/r.yaml")]),
     "rules/routes/../routes/r.yaml: not a plain relative path"),
    (_content([_routes({"id": "r"}, "rules/routes.yaml")]),
     "rules/routes.yaml: a routes document is read only from rules/routes/*.yaml"),
    (_content([_routes({"id": "r"}, "rules/routes/r.yml")]),
     "rules/routes/r.yml: a routes document is read only from rules/routes/*.yaml"),
    (_content([("rules/routes/r.yaml", "connection", {"id": "r"})]),
     "a connection document is read only from catalog/connections/*.yaml"),
    (_content([_routes(None)]),
     "rules/routes/r.yaml: an empty document, which an import would skip"),
    (_content([_routes({"id": "r"}), _routes({"id": "s"})]),
     "rules/routes/r.yaml: a second file at this path (document)"),
    (_content([], concept_maps={"rules/mappings/sex.csv": SHEET_HEADER}),
     "rules/mappings/sex.csv: concept-map sheets are read only from "
     "rules/mappings/concept-maps/*.csv"),
    (_content([], files={"rules/routes/m.yaml": b"id: m\n"}),
     "rules/routes/m.yaml: a test message file where an import reads rule documents"),
    (_content([], files={"README.md": b"hello"}),
     "README.md: outside rules/ and catalog/"),
], ids=["absolute", "not-normalised", "wrong-folder", "wrong-extension", "wrong-kind", "empty",
        "duplicate", "sheet-folder", "message-as-document", "message-outside"])
def test_content_that_could_not_come_back_is_not_exported(
    content: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match="the content cannot be written as files") as refused:
        write_export(content, tmp_path / "out")
    assert message in str(refused.value)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_damaged_message_file_is_not_exported() -> None:
    content = _content([])
    content["files"]["rules/tests/messages/m.hl7"] = "not base64!"

    with pytest.raises(ExportError, match=r"m\.hl7: the stored message file is not valid base64"):
        export_files(content)

