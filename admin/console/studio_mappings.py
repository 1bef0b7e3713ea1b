"""The rule studio's mapping editors: a mapping as a table of canonical targets, a
lookup table as a grid of codes, and an official concept map, read-only, beside the
draft's overrides of it. A mixin of StudioView, which holds the studio's other pages;
every change goes through engine.change_control, checked as the rest of the studio's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING, Any

import yaml
from flask import abort, flash, redirect, request, url_for
from flask_admin import expose

from admin.console.access import principal
from admin.console.studio_access import (
    author_only,
    change_or_refuse,
    editable,
    may_change,
    version_of,
)
from admin.console.studio_pages import findings_by_key
from admin.services import services
from engine.model.concept_map import concept_map_from_csv, concept_map_rows
from engine.rules import mapping_form, table_form
from engine.rules.document_check import blocking, document_findings
from engine.rules.field_catalog import hl7_fields, words_for
from engine.rules.route_form import id_from
from engine.rules.source import CONCEPT_MAPS

MAPPINGS_FOLDER = "rules/mappings/"
PAGE_SIZE = 50


class MappingEditors:
    """The mapping editor, the lookup-table grid and the concept-map overrides."""

    if TYPE_CHECKING:
        def render(self, template: str, **kwargs: Any) -> Any: ...

    # ---- the mapping editor ----------------------------------------------------------

    @expose("/<int:version>/mappings", methods=("GET", "POST"))
    def mappings(self, version: int) -> Any:
        if request.method == "POST":
            author_only()
        shown = version_of(version)
        if not (request.args.get("path") or request.args.get("new")):
            return redirect(url_for(".draft", version=version))
        path = _path_in(MAPPINGS_FOLDER, "a mapping")
        content = services().versions.content(version)
        existing = _document(content, path, "mapping")
        if request.method == "GET":
            form = (mapping_form.from_document(existing["data"]) if existing else
                    mapping_form.MappingForm({"mapping-id": _stem(path),
                                              "mapping-applies-to": "*"}, []))
            written = mapping_form.to_document(form, complete=False)
            findings = document_findings(content, path, "mapping", written.data) \
                if existing else []
            return self._mapping_editor(shown, path, content, form, {},
                                        findings_by_key(findings, written.place))
        may_change(shown)
        return self._posted(shown, path, content, mapping_form, "mapping",
                            self._mapping_editor, ".mappings")

    def _posted(self, shown: dict[str, Any], path: str, content: dict[str, Any],
                forms: ModuleType, kind: str, editor: Callable[..., Any],
                endpoint: str) -> Any:
        """A posted mapping or table form (``forms``, its module): a button drawn again
        with what it did; save checks the document and stores it, or draws the form with
        what stops the save beside its fields."""
        form = forms.read_form(request.form.to_dict(flat=False))
        action = request.form.get("action", "")
        if action != "save":
            form = forms.apply(form, action)
            written = forms.to_document(form, complete=False)
            return editor(shown, path, content, form, written.errors, {})
        written = forms.to_document(form)
        errors = _refusals(content, path, kind, written)
        if errors:
            return editor(shown, path, content, form, errors, {}, 400)
        return _store(shown, path, kind, written.data,
                      url_for(endpoint, version=shown["version"], path=path))

    def _mapping_editor(self, shown: dict[str, Any], path: str, content: dict[str, Any],
                        form: mapping_form.MappingForm, errors: dict[str, str],
                        warnings: dict[str, Any], status: int = 200) -> Any:
        return self.render(
            "console/studio_mappings.html", version=shown, path=path, form=form,
            errors=errors, warnings=warnings, editable=editable(shown),
            transforms=mapping_form.TRANSFORM_WORDS, lookups=_lookups(content),
            targets=mapping_form.mapping_targets(), hl7=hl7_fields(), words_for=words_for,
            target_words=mapping_form.target_words, spec_summary=_spec_summary), status

    # ---- lookup tables ---------------------------------------------------------------

    @expose("/<int:version>/tables", methods=("GET", "POST"))
    def tables(self, version: int) -> Any:
        if request.method == "POST":
            author_only()
        shown = version_of(version)
        if not (request.args.get("path") or request.args.get("new")):
            return redirect(url_for(".draft", version=version))
        path = _path_in(table_form.TABLES_FOLDER, "a lookup table")
        content = services().versions.content(version)
        existing = _document(content, path, "table")
        if request.method == "GET":
            form = (table_form.from_document(existing["data"]) if existing
                    else table_form.TableForm(_stem(path), rows=[table_form.TableRow()]))
            return self._table_grid(shown, path, content, form, {}, _warnings(
                content, path, existing, table_form.to_document(form, complete=False)))
        may_change(shown)
        return self._posted(shown, path, content, table_form, "table", self._table_grid,
                            ".tables")

    def _table_grid(self, shown: dict[str, Any], path: str, content: dict[str, Any],
                    form: table_form.TableForm, errors: dict[str, str],
                    warnings: dict[str, Any], status: int = 200) -> Any:
        return self.render("console/studio_table.html", version=shown, path=path, form=form,
                           errors=errors, warnings=warnings, editable=editable(shown),
                           concept_maps=sorted(_concept_maps(content))), status

    # ---- concept maps and their overrides --------------------------------------------

    @expose("/<int:version>/concept-maps/<concept_map>", methods=("GET", "POST"))
    def concept_map(self, version: int, concept_map: str) -> Any:
        if request.method == "POST":
            author_only()
        shown = version_of(version)
        content = services().versions.content(version)
        sheet = _concept_maps(content).get(concept_map)
        if sheet is None:
            abort(404, description=f"version {version} has no concept map {concept_map!r}")
        existing = _overrides_of(content, concept_map)
        path = existing["path"] if existing else table_form.overrides_path(concept_map)
        if request.method == "GET":
            form = (table_form.from_document(existing["data"]) if existing
                    else table_form.TableForm(f"{concept_map}-overrides", overrides=concept_map))
            return self._overrides_page(shown, concept_map, sheet, path, content, form, {},
                                        _warnings(content, path, existing,
                                                  table_form.to_document(form, False)))
        may_change(shown)
        return self._save_overrides(shown, concept_map, sheet, path, content, existing)

    def _save_overrides(self, shown: dict[str, Any], concept_map: str, sheet: str, path: str,
                        content: dict[str, Any], existing: dict[str, Any] | None) -> Any:
        form = table_form.read_form(request.form.to_dict(flat=False))
        form.overrides = concept_map  # the map a page overrides is the page's, not posted
        action = request.form.get("action", "")
        if action != "save":
            form = table_form.apply(form, action)
            written = table_form.to_document(form, complete=False)
            return self._overrides_page(shown, concept_map, sheet, path, content, form,
                                        written.errors, {})
        here = url_for(".concept_map", version=shown["version"], concept_map=concept_map)
        if not form.rows:
            if existing is not None:
                change_or_refuse(lambda: services().versions.delete_document(
                    shown["version"], principal(), path))
            flash(f"No overrides: {concept_map} reads as published.", "success")
            return redirect(here)
        written = table_form.to_document(form)
        errors = _refusals(content, path, "table", written)
        if errors:
            return self._overrides_page(shown, concept_map, sheet, path, content, form,
                                        errors, {}, 400)
        return _store(shown, path, "table", written.data, here)

    def _overrides_page(self, shown: dict[str, Any], concept_map: str, sheet: str, path: str,
                        content: dict[str, Any], form: table_form.TableForm,
                        errors: dict[str, str], warnings: dict[str, Any],
                        status: int = 200) -> Any:
        official = concept_map_from_csv(concept_map, sheet)
        rows = concept_map_rows(sheet)
        query = request.args.get("q", "").strip()
        if query:
            rows = [row for row in rows if query.lower() in " ".join(row).lower()]
        asked = request.args.get("page", "")
        page = int(asked) if asked.isdigit() and int(asked) > 0 else 1
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        return self.render(
            "console/studio_concept_map.html", version=shown, concept_map=concept_map,
            rows=rows[(page - 1) * PAGE_SIZE:page * PAGE_SIZE], page=min(page, pages),
            pages=pages, query=query, official=official, path=path, form=form,
            overridden={row.code for row in form.rows}, errors=errors, warnings=warnings,
            editable=editable(shown), source=f"{CONCEPT_MAPS}/{concept_map}.csv"), status

def _store(shown: dict[str, Any], path: str, kind: str, data: Any, then: str) -> Any:
    change_or_refuse(lambda: services().versions.put_document(
        shown["version"], principal(), path, kind, data))
    flash(f"Saved {path}.", "success")
    return redirect(then)


def _refusals(content: dict[str, Any], path: str, kind: str, written: Any) -> dict[str, str]:
    """What stops a save, beside its field: a value typed wrong, else a schema error."""
    if written.errors:
        return dict(written.errors)
    found = blocking(document_findings(content, path, kind, written.data))
    return findings_by_key(found, written.place)


def _warnings(content: dict[str, Any], path: str, existing: dict[str, Any] | None,
              written: Any) -> dict[str, Any]:
    """What the gates will ask about in a stored document, beside its field."""
    if existing is None:
        return {}
    return findings_by_key(document_findings(content, path, existing["kind"], written.data),
                           written.place)


def _path_in(folder: str, what: str) -> str:
    """The document an editor opens: ?path=FOLDER/x.yaml, or ?new=x."""
    new = request.args.get("new", "").strip().lower()
    path = f"{folder}{id_from(new)}.yaml" if new else request.args.get("path", "")
    name = path.removeprefix(folder).removesuffix(".yaml")
    if not path.startswith(folder) or not path.endswith(".yaml") or not name \
            or "/" in name or id_from(name) != name:
        abort(400, description=f"Name {what}: lower-case letters, digits and hyphens")
    return path


def _document(content: dict[str, Any], path: str, kind: str) -> dict[str, Any] | None:
    found = next((d for d in content["documents"] if d["path"] == path), None)
    if found is not None and found["kind"] != kind:
        abort(404, description=f"{path} is not {kind}: open it in the YAML view")
    return found


def _stem(path: str) -> str:
    return PurePosixPath(path).stem


def _concept_maps(content: dict[str, Any]) -> dict[str, str]:
    """The version's official concept maps: id -> the sheet's text."""
    return {_stem(path): text for path, text in (content.get("concept_maps") or {}).items()}


def _overrides_of(content: dict[str, Any], concept_map: str) -> dict[str, Any] | None:
    """The draft's table overriding ``concept_map`` (the first: the linter reports a
    second); refused when its usual path holds some other table."""
    documents: list[dict[str, Any]] = content["documents"]
    for doc in documents:
        if doc["kind"] == "table" and isinstance(doc["data"], dict) \
                and doc["data"].get("overrides") == concept_map:
            return doc
    taken = next((d for d in content["documents"]
                  if d["path"] == table_form.overrides_path(concept_map)), None)
    if taken is not None:
        abort(409, description=f"{taken['path']} is taken by a table that does not override "
                               f"{concept_map}: rename it in the YAML view first")
    return None


def _lookups(content: dict[str, Any]) -> dict[str, list[str]]:
    """The lookups a mapping may name in this version, by where they come from."""
    tables = sorted(str(d["data"].get("id") or _stem(d["path"])) for d in content["documents"]
                    if d["kind"] == "table" and isinstance(d["data"], dict)
                    and "overrides" not in d["data"])
    return {"Concept maps": sorted(_concept_maps(content)), "Lookup tables": tables}


def _spec_summary(text: str) -> str:
    try:
        return mapping_form.summary(yaml.safe_load(text))
    except yaml.YAMLError:
        return ""
