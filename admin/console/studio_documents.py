"""The rule studio's form editors for catalog connections and exception policies,
drawn from their JSON Schemas (engine.rules.schema_form): every field with the schema's
help beside it, errors beside the field they concern, a connection's completeness
badge checked as you type. Secrets are named by environment variable, never entered:
the schemas have no field that takes one.

A mixin of the studio's view (Flask-Admin collects the exposed methods of its bases);
who may open and change what is the studio's to say.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose

from admin.console import studio_access as access
from admin.services import services
from engine.model.schemas import schema
from engine.rules.catalog_entry import CatalogError, Connection
from engine.rules.document_check import blocking, document_findings
from engine.rules.field_catalog import canonical_fields
from engine.rules.findings import Finding
from engine.rules.schema_form import FormField, ReadBack, form_fields, read_form

# What the form editors edit: document kind -> (its schema, the folder new ones go in,
# what to call one).
FORMS = {
    "connection": ("connection", "catalog/connections/", "catalog connection"),
    "policies": ("policies", "rules/policies/", "exception-policy file"),
}
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_REQUIRED = re.compile(r"^'([^']+)' is a required property$")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class DocumentForms:
    """``/studio/<version>/document?path=...``: a connection or policy file as a form;
    ``/studio/<version>/documents/new?kind=...``: a new one."""

    render: Callable[..., Any]  # the view's, from Flask-Admin's BaseView

    @expose("/<int:version>/document", methods=("GET", "POST"))
    def document(self, version: int) -> Any:
        if request.method == "POST":
            access.author_only()
        shown = access.version_of(version)
        content = services().versions.content(version)
        path = request.args.get("path", "")
        if not path:
            return redirect(url_for(".draft", version=version))
        found = next((d for d in content["documents"] if d["path"] == path), None)
        if found is None or found["kind"] not in FORMS:
            abort(404, description=f"version {version} has no connection or policy file "
                                   f"{path!r}: open other documents in the YAML view")
        kind = found["kind"]
        if request.method == "GET":
            return self._form_page(shown, content, kind, path, found["data"], {}, True)
        access.may_change(shown)
        back = read_form(schema(FORMS[kind][0]), _posted(), found["data"])
        return self._posted_form(shown, content, kind, path, back)

    @expose("/<int:version>/documents/new", methods=("GET", "POST"))
    def new_document(self, version: int) -> Any:
        access.author_only()
        shown = access.version_of(version)
        kind = request.args.get("kind", "")
        if kind not in FORMS:
            return redirect(url_for(".draft", version=version))
        content = services().versions.content(version)
        if request.method == "GET":
            access.may_change(shown)
            return self._form_page(shown, content, kind, None, {}, {}, True)
        access.may_change(shown)
        back = read_form(schema(FORMS[kind][0]), _posted())
        return self._posted_form(shown, content, kind, None, back)

    @expose("/<int:version>/document/status", methods=("POST",))
    def document_status(self, version: int) -> Any:
        """The completeness badge and the problems, checked as the form is typed in."""
        access.version_of(version)
        kind = request.args.get("kind", "")
        if kind not in FORMS:
            abort(400, description=f"Name the kind: {', '.join(FORMS)}")
        content = services().versions.content(version)
        back = read_form(schema(FORMS[kind][0]), _posted())
        path = request.args.get("path") or _new_path(kind, back.data)
        problems = _problems(content, kind, path, back)
        return self.render("console/studio_document_status.html", kind=kind,
                           completeness=_completeness(kind, back.data), problems=problems)

    # ---- pages -----------------------------------------------------------------------

    def _posted_form(self, shown: dict[str, Any], content: dict[str, Any], kind: str,
                     path: str | None, back: ReadBack) -> Any:
        action = request.form.get("action", "save")
        if action != "save":
            data = _act(back.data, action)
            return self._form_page(shown, content, kind, path, data, {}, False)
        target = path or _new_path(kind, back.data)
        problems = _problems(content, kind, target, back, new=path is None)
        stopping = {key: text for key, (text, stops) in problems.items() if stops}
        if stopping:
            return self._form_page(shown, content, kind, path, back.data, problems, False, 400)
        version = shown["version"]
        access.change_or_refuse(lambda: services().versions.put_document(
            version, _principal(), target, kind, back.data))
        flash(f"Saved {target}.", "success")
        return redirect(url_for(".document", version=version, path=target))

    def _form_page(self, shown: dict[str, Any], content: dict[str, Any], kind: str,
                   path: str | None, data: dict[str, Any],
                   problems: dict[str, tuple[str, bool]], check: bool, status: int = 200) -> Any:
        if check and path is not None:
            problems = _problems(content, kind, path, ReadBack(data))
        fields = form_fields(schema(FORMS[kind][0]), data, _choices(kind, content))
        return self.render(
            "console/studio_document.html", version=shown, kind=kind, what=FORMS[kind][2],
            path=path, fields=fields, problems=problems, editable=access.editable(shown),
            completeness=_completeness(kind, data), scope_choices=_scope_choices(data),
            unplaced=_unplaced(problems, fields)), status


# ---- reading and checking a posted form --------------------------------------------------


def _posted() -> dict[str, list[str]]:
    return {key: values for key, values in request.form.to_dict(flat=False).items()
            if key not in ("csrf_token", "action")}


def _new_path(kind: str, data: dict[str, Any]) -> str:
    return f"{FORMS[kind][1]}{data.get('id') or 'new'}.yaml"


def _problems(content: dict[str, Any], kind: str, path: str, back: ReadBack,
              new: bool = False) -> dict[str, tuple[str, bool]]:
    """Each problem by the field it concerns, and whether it stops a save (a value that
    is not what its field takes, or a schema error; lint findings only warn, as a draft
    may be unfinished)."""
    placed: dict[str, tuple[str, bool]] = {key: (text, True) for key, text in back.problems.items()}
    document_id = back.data.get("id")
    if new and isinstance(document_id, str) and _ID.match(document_id) and any(
            d["path"] == path for d in content["documents"]):
        placed["id"] = (f"This draft already has {path}: choose another id", True)
    try:
        findings = document_findings(content, path, kind, back.data)
    except (KeyError, TypeError, ValueError) as error:
        findings = [Finding(path, "", f"cannot be checked: {error}")]
    stops = set(map(id, blocking(findings)))
    for finding in findings:
        key = _field_of(finding)
        if key in placed:
            continue
        placed[key] = (_plain(finding.problem), id(finding) in stops)
    return placed


def _field_of(finding: Finding) -> str:
    """The form field a finding's location names: a missing property is the property's."""
    location = "" if finding.location in ("(document)", "(root)") else finding.location
    required = _REQUIRED.match(finding.problem)
    if required:
        return f"{location}.{required.group(1)}" if location else required.group(1)
    return location


def _plain(problem: str) -> str:
    """The schema's words where a person reads them: what to do, not the keyword."""
    if _REQUIRED.match(problem):
        return "Fill this in: it is required."
    if " does not match " in problem:
        return "Not in the form this field takes: see its help and example."
    if " is not one of " in problem:
        return "Choose one of the offered values."
    return problem


def _unplaced(problems: dict[str, tuple[str, bool]], fields: tuple[FormField, ...]) -> list[str]:
    """Problems no field shows: they go at the top of the form."""
    names = set(_names(fields))
    return [text for key, (text, _stops) in problems.items() if key not in names]


def _names(fields: tuple[FormField, ...]) -> list[str]:
    found = []
    for field in fields:
        found.append(field.name)
        found += _names(field.fields)
        for item in field.items:
            found.append(item.name)
            found += _names(item.fields)
    return found


def _completeness(kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """What a connection entry still lacks for compliance; None for other documents."""
    if kind != "connection":
        return None
    try:
        missing = Connection.from_dict(data).missing()
    except CatalogError as error:
        return {"complete": False, "missing": [], "problem": str(error)}
    return {"complete": not missing, "missing": missing, "problem": None}


def _choices(kind: str, content: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    if kind != "policies":
        return {"data_scope": tuple(path for path, _words in _scope_paths())}
    ids = sorted(str(d["data"].get("id")) for d in content["documents"]
                 if d["kind"] == "connection" and isinstance(d["data"], dict))
    return {"connections": ("*", *ids)}


def _scope_choices(data: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The canonical paths a data scope may name, grouped by the record's sections,
    with what each holds; paths already written but not in the schema are kept."""
    groups: dict[str, list[tuple[str, str]]] = {}
    known = set()
    for path, words in _scope_paths():
        known.add(path)
        groups.setdefault(path.split(".")[0].split("[")[0], []).append((path, words))
    for path in data.get("data_scope") or []:
        if path not in known:
            groups.setdefault(str(path).split(".")[0].split("[")[0], []).append((path, ""))
    return list(groups.items())


def _scope_paths() -> list[tuple[str, str]]:
    """What a scope may name: every canonical path, a list by its own name (``results``
    takes every result whole) rather than as ``results[*]``."""
    seen: dict[str, str] = {}
    for pickable in canonical_fields():
        seen.setdefault(pickable.path.removesuffix("[*]"), pickable.words)
    return list(seen.items())


def _act(data: dict[str, Any], action: str) -> dict[str, Any]:
    """``add:policies`` appends an empty item to a list; ``remove:policies[1]`` drops
    one; anything else (``refresh``) just draws the form again."""
    verb, _colon, where = action.partition(":")
    steps = [int(index) if index else name for name, index in _STEP.findall(where)]
    if verb == "add" and steps:
        holder = _walk(data, steps[:-1])
        if isinstance(holder, dict):
            holder.setdefault(steps[-1], []).append({})
    elif verb == "remove" and len(steps) >= 2 and isinstance(steps[-1], int):
        items = _walk(data, steps[:-1])
        if isinstance(items, list) and 0 <= steps[-1] < len(items):
            del items[steps[-1]]
    return data


def _walk(data: Any, steps: list[Any]) -> Any:
    for step in steps:
        if isinstance(step, int):
            data = data[step] if isinstance(data, list) and step < len(data) else None
        else:
            data = data.setdefault(step, {}) if isinstance(data, dict) else None
    return data



def _principal() -> Any:
    from admin.console.access import principal

    return principal()
