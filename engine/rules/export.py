"""Writing a rule-set version's content out as a configuration root (``rules/`` and
``catalog/``) and reading a root back as content: how a version leaves the database to
be reviewed or edited with ordinary tools, and how edited files come back as a draft.

Two promises, both tested:

- An export is a function of the content's value alone: mapping keys in a fixed order,
  no YAML anchors, no line folding. Two exports of one version are byte-identical, and
  so are the exports of two versions with the same content hash.
- Nothing is lost: ``import_content`` of an export gives back exactly the content that
  was exported. Content that could not make that trip (a path the reader would not read
  back, a value JSON cannot store) is refused on both sides, with the reason.

Only the files a RuleSource holds are written: the rule and catalog documents, the
concept-map sheets and the test message files. Other files in a configuration root
(``rules/schema/``, READMEs, LICENSE files) are not part of a version.
"""

from __future__ import annotations

import base64
import binascii
import math
import posixpath
import re
from pathlib import Path
from typing import Any

import yaml

from engine.errors import SwitchboardError
from engine.rules.snapshot import from_content, to_content
from engine.rules.source import CONCEPT_MAPS, LAYOUT, RuleSource, read_rule_source

# The two folders a version's files live under.
TOP_FOLDERS = ("rules", "catalog")
# Keys written first in every mapping, so an exported file opens the way people write
# one; every other key follows in alphabetical order.
LEADING_KEYS = ("id", "name", "description")
# Wide enough that PyYAML never folds a long string over several lines: folding is
# where its round trips have gone wrong, and one line per value diffs better.
_NO_FOLDING = 1 << 30
# Characters a literal block or a plain scalar cannot carry exactly (the reader turns
# NEL into a newline, and controls are not allowed unescaped): such strings are written
# double-quoted, where every character has an escape.
_NEEDS_ESCAPES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


class ExportError(SwitchboardError):
    """A version's content cannot be written as a configuration root."""


class ImportRefusedError(SwitchboardError):
    """A configuration root cannot become a draft without losing something."""


# -- Export -----------------------------------------------------------------------------


def export_files(content: dict[str, Any]) -> dict[str, bytes]:
    """Every file of ``content`` as ``{path relative to the root: bytes}``, sorted by path."""
    problems = content_problems(content)
    if problems:
        raise ExportError(
            f"the content cannot be written as files: {'; '.join(problems)}",
            hint="Fix the version in a draft and export again",
        )
    files = {doc["path"]: _yaml_bytes(doc["path"], doc["data"]) for doc in content["documents"]}
    for path, text in content.get("concept_maps", {}).items():
        files[path] = text.encode("utf-8")
    for path, encoded in content.get("files", {}).items():
        files[path] = _decoded(path, encoded)
    return dict(sorted(files.items()))


def write_export(content: dict[str, Any], target: Path, *, replace: bool = False) -> list[str]:
    """Write ``content`` under ``target``; return the written paths, sorted.

    ``target`` must be missing or empty. With ``replace``, it may hold a previous export
    (or a whole configuration root): every file an import would read from it is removed
    first, so none is left over from the other version, and every other file
    (``rules/schema/``, READMEs, licences) is kept.
    """
    files = export_files(content)  # before touching the disk: a refusal changes nothing
    _prepare_target(target, replace)
    for relative, data in files.items():
        _write_file(target, relative, data)
    return list(files)


def document_yaml(path: str, data: Any) -> str:
    """One document as its exported file's text: what an editor shows and diffs."""
    return _yaml_bytes(path, data).decode("utf-8")


def _yaml_bytes(path: str, data: Any) -> bytes:
    text = yaml.dump(
        data, Dumper=_ExportDumper, allow_unicode=True, default_flow_style=False,
        sort_keys=False, width=_NO_FOLDING,
    )
    # A guard, not a normal path: the representers below are built to make this hold.
    if not _same(yaml.safe_load(text), data):
        raise ExportError(
            f"{path}: the YAML writer cannot reproduce this document exactly",
            hint="Report this as a bug in Switchboard, with the document",
        )
    return text.encode("utf-8")


def _decoded(path: str, encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ExportError(
            f"{path}: the stored message file is not valid base64 ({exc})",
            hint="The version is damaged; export an earlier version or re-import the files",
        ) from exc


class _ExportDumper(yaml.SafeDumper):
    """The safe dumper, writing a value the same way however it was built."""

    def ignore_aliases(self, data: Any) -> bool:
        # Content read from YAML may share objects (anchors); content read from the
        # database never does. Writing no anchors makes both export the same.
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # List items indented under their key, as the configuration files are written.
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=_str_style(value))


def _str_style(value: str) -> str | None:
    """Double quotes for strings that need escapes, a literal block for multi-line text
    (PyYAML falls back to double quotes where a block cannot hold it, e.g. trailing
    spaces), otherwise PyYAML's choice: it quotes 'no', '0123', '2026-11-24' and the
    like, which would otherwise load as booleans, numbers and dates."""
    if _NEEDS_ESCAPES.search(value):
        return '"'
    return "|" if "\n" in value else None


def _represent_dict(dumper: yaml.SafeDumper, value: dict[str, Any]) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", sorted(value.items(), key=_key_rank))


def _key_rank(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (LEADING_KEYS.index(key) if key in LEADING_KEYS else len(LEADING_KEYS), key)


_ExportDumper.add_representer(str, _represent_str)
_ExportDumper.add_representer(dict, _represent_dict)


def _same(loaded: Any, data: Any) -> bool:
    """Equal, and of the same types all the way down (``1``, ``1.0`` and ``True`` are
    equal in Python but are different values in a rule)."""
    if type(loaded) is not type(data):
        return False
    if isinstance(data, dict):
        return loaded.keys() == data.keys() and all(_same(loaded[k], data[k]) for k in data)
    if isinstance(data, list):
        return len(loaded) == len(data) and all(map(_same, loaded, data))
    return bool(loaded == data)


def _prepare_target(target: Path, replace: bool) -> None:
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} is a file, not a folder",
                          hint="Give a folder to export into")
    if not target.exists() or not any(target.iterdir()):
        return
    if not replace:
        raise ExportError(
            f"{target} is not empty",
            hint="Export into a new or empty folder, or replace a previous export there "
                 "(which removes only the rule, catalog, concept-map and test message files)",
        )
    _remove_previous_export(target)


def _remove_previous_export(target: Path) -> None:
    """Remove the files an import of ``target`` would read, and folders left empty."""
    for relative in sorted(_files_an_import_reads(target)):
        path = target / relative
        if not _inside(target, path):
            continue  # reached through a symbolic link: not this export's to delete
        try:
            path.unlink()
        except OSError as exc:
            raise ExportError(f"cannot remove {relative} from the previous export: "
                              f"{exc.strerror}", hint="Check the folder's permissions") from exc
        _remove_empty_parents(target, path.parent)


def _files_an_import_reads(target: Path) -> set[str]:
    if not any((target / top).is_dir() for top in TOP_FOLDERS):
        return set()
    globs = [(folder, "*.yaml") for folder, _ in LAYOUT] + [(CONCEPT_MAPS, "*.csv")]
    found = {
        path.relative_to(target).as_posix()
        for folder, pattern in globs
        for path in (target / folder).glob(pattern)
        if path.is_file()
    }
    # Message files are found through the test documents that name them.
    messages = read_rule_source(target).files
    return found | {key for key in messages if _path_problem(key) is None}


def _remove_empty_parents(target: Path, folder: Path) -> None:
    while folder != target and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _inside(target: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(target.resolve())


def _write_file(target: Path, relative: str, data: bytes) -> None:
    path = target / relative
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise ExportError(f"cannot write {relative} under {target}: {exc.strerror}",
                          hint="Check the folder's permissions and free space") from exc


# -- Import -----------------------------------------------------------------------------


def import_content(root: Path) -> dict[str, Any]:
    """The content of the configuration root ``root``, ready to store as a draft.

    Refused when reading lost something (a file that is not valid YAML or cannot be
    read, a test message file that is missing) or when the content could not be exported
    back unchanged; problems the draft keeps (a concept-map sheet that is not a valid
    table) are left to the linter, as for any draft.
    """
    source = read_rule_source(root)
    content = to_content(source)
    lost = _read_findings(source, content)
    if lost:
        raise ImportRefusedError(
            f"{root} cannot be imported: {len(lost)} file(s) could not be read: "
            + "; ".join(str(finding) for finding in lost),
            hint="Fix these files and import again: a draft is made only from a root read whole",
        )
    problems = content_problems(content)
    if problems:
        raise ImportRefusedError(
            f"{root} cannot be imported: {'; '.join(problems)}",
            hint="Fix these files and import again",
        )
    return content


def _read_findings(source: RuleSource, content: dict[str, Any]) -> list[Any]:
    """The findings of reading the files, as opposed to those of the content itself:
    rebuilding the RuleSource from the content reproduces only the latter."""
    kept = set(from_content(content).findings)
    return [finding for finding in source.findings if finding not in kept]


# -- What content can make the round trip ------------------------------------------------


def content_problems(content: dict[str, Any]) -> list[str]:
    """Why ``content`` could not be written as files and read back unchanged: empty when
    it can. Content that ``import_content`` returns always can."""
    problems = []
    seen: set[str] = set()
    for path, what, problem in _entries(content):
        if path in seen:
            problem = problem or f"a second file at this path ({what})"
        seen.add(path)
        if problem:
            problems.append(f"{path}: {problem}")
    return problems


def _entries(content: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(path, what it is, its problem or None) for every file of ``content``."""
    entries = [
        (doc["path"], "document", _path_problem(doc["path"]) or _document_problem(doc))
        for doc in content["documents"]
    ]
    entries += [
        (path, "concept-map sheet", _path_problem(path) or _sheet_problem(path))
        for path in content.get("concept_maps", {})
    ]
    entries += [
        (path, "test message file", _path_problem(path) or _message_file_problem(path))
        for path in content.get("files", {})
    ]
    return entries


def _path_problem(path: str) -> str | None:
    parts = path.split("/")
    if path != posixpath.normpath(path) or path.startswith("/") or ".." in parts:
        return "not a plain relative path inside the configuration root"
    if parts[0] not in TOP_FOLDERS or len(parts) < 2:
        return "outside rules/ and catalog/, the folders a version is exported to"
    return None


def _document_problem(doc: dict[str, Any]) -> str | None:
    folder, kind = posixpath.dirname(doc["path"]), doc["kind"]
    if (folder, kind) not in LAYOUT or not doc["path"].endswith(".yaml"):
        return f"a {kind} document is read only from " + " or ".join(
            f"{layout_folder}/*.yaml" for layout_folder, layout_kind in LAYOUT
            if layout_kind == kind
        )
    if doc["data"] is None:
        return "an empty document, which an import would skip"
    return _unstorable(doc["data"], "")


def _sheet_problem(path: str) -> str | None:
    if posixpath.dirname(path) != CONCEPT_MAPS or not path.endswith(".csv"):
        return f"concept-map sheets are read only from {CONCEPT_MAPS}/*.csv"
    return None


def _message_file_problem(path: str) -> str | None:
    if _read_as_document(path):
        return "a test message file where an import reads rule documents or sheets"
    return None


def _read_as_document(path: str) -> bool:
    folder = posixpath.dirname(path)
    if path.endswith(".yaml"):
        return any(folder == layout_folder for layout_folder, _ in LAYOUT)
    return path.endswith(".csv") and folder == CONCEPT_MAPS


def _unstorable(value: Any, where: str) -> str | None:
    """Where ``value`` holds something a version (stored as JSON) cannot hold exactly."""
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else _at(where, f"{value!r} is not a finite number")
    if isinstance(value, list):
        return _first(_unstorable(item, f"{where}[{index}]") for index, item in enumerate(value))
    if isinstance(value, dict):
        return _first(_unstorable_entry(key, item, where) for key, item in value.items())
    return _at(where, f"{value!r} is a {type(value).__name__}, which a version cannot store "
                      "(quote it in the YAML file to keep it as text)")


def _unstorable_entry(key: Any, item: Any, where: str) -> str | None:
    if not isinstance(key, str):
        return _at(where, f"the key {key!r} is not text (quote it in the YAML file)")
    return _unstorable(item, f"{where}.{key}" if where else key)


def _at(where: str, problem: str) -> str:
    return f"{where}: {problem}" if where else problem


def _first(found: Any) -> str | None:
    return next((problem for problem in found if problem), None)
