"""The rule studio, where analysts change the routing rules without writing code: their
drafts (start one from any version, rename, delete, submit for review), a draft's
documents by kind, the route editor (rows, a condition builder, destinations from the
draft's own catalog, a checkpoint) and the YAML view of any document. Every change goes
through engine.change_control, which checks the version's state and who may change it,
and audits it.

Analysts and admins change drafts (their own; admins anyone's). Approvers may open
every page read-only, to see what they will review; nobody else may open the studio.
A version that is not a draft, or is someone else's, opens read-only.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, make_response, redirect, request, url_for
from flask_admin import expose

from admin.console.access import ConsoleView, deny, principal
from admin.console.studio_access import author_only as _author_only
from admin.console.studio_access import editable as _editable
from admin.console.studio_access import may_author as _may_author
from admin.console.studio_access import said as _said
from admin.console.studio_access import version_of as _version
from admin.console.studio_documents import DocumentForms
from admin.console.studio_mappings import MappingEditors
from admin.console.studio_pages import (
    KIND_NAMES,
    concept_maps_of,
    connections_of,
    draft_rows,
    finding_markup,
    findings_by_key,
    grouped_documents,
    sent_back_rows,
    unset_secrets,
    yaml_page_state,
)
from admin.console.studio_templates import TemplateStarts
from admin.services import services
from engine.queues import Invalid, NotFound
from engine.rules import lifecycle
from engine.rules.document_check import blocking, document_findings
from engine.rules.export import document_yaml
from engine.rules.field_catalog import (
    canonical_fields,
    hl7_fields,
    item_fields,
    item_lists,
    item_noun,
    message_kinds,
    words_for,
)
from engine.rules.findings import Finding
from engine.rules.lifecycle import Conflict, Forbidden
from engine.rules.route_document import to_document
from engine.rules.route_form import (
    CHECKPOINTS,
    GROUPS,
    RouteForm,
    apply,
    from_document,
    id_from,
    read_form,
    shared_list,
)
from engine.security.roles import Role

ROUTES_FOLDER = "rules/routes/"
OPS = (("eq", "is"), ("ne", "is not"), ("in", "is one of"), ("not_in", "is none of"),
       ("matches", "matches the pattern"), ("exists", "is present"),
       ("missing", "is absent"), ("lt", "is less than"), ("le", "is at most"),
       ("gt", "is greater than"), ("ge", "is at least"))


class StudioView(DocumentForms, TemplateStarts, MappingEditors, ConsoleView):
    roles = frozenset({Role.ANALYST, Role.APPROVER})

    def __init__(self) -> None:
        super().__init__(name="Rule studio", endpoint="studio", url="/studio")

    # ---- drafts ----------------------------------------------------------------------

    @expose("/")
    def index(self) -> Any:
        return self._drafts_page({}, {})

    def _drafts_page(self, form: dict[str, str], errors: dict[str, str]) -> Any:
        versions = services().versions.history(per_page=200).items
        drafts = draft_rows(versions)
        sent_back = sent_back_rows(versions, principal().name)
        return self.render("console/studio_drafts.html", drafts=drafts, sent_back=sent_back,
                           gates={d["version"]: services().versions.gates(d["version"])
                                  for d in drafts},
                           versions=[v for v in versions if v["status"] != lifecycle.DRAFT
                                     or v["author"] == principal().name],
                           published=next((v["version"] for v in versions
                                           if v["status"] == lifecycle.PUBLISHED), None),
                           form=form, errors=errors, may_author=_may_author()), (
                               400 if errors else 200)

    @expose("/new", methods=("POST",))
    def new(self) -> Any:
        _author_only()
        form = {"summary": request.form.get("summary", "").strip()[:500],
                "parent": request.form.get("parent", "")}
        if not form["summary"]:
            return self._drafts_page(form, {"summary": "Say what the change is for"})
        parent = int(form["parent"]) if form["parent"].isdigit() else None
        try:
            created = services().versions.create_draft(principal(), form["summary"], parent)
        except (Invalid, NotFound) as error:
            return self._drafts_page(form, {"parent": _said(error)})
        flash(f"Draft version {created['version']} started from version "
              f"{created['parent']}.", "success")
        return redirect(url_for(".draft", version=created["version"]))

    @expose("/<int:version>")
    def draft(self, version: int) -> Any:
        return self._draft_page(_version(version))

    def _draft_page(self, shown: dict[str, Any]) -> Any:
        content = services().versions.content(shown["version"])
        return self.render("console/studio_draft.html", version=shown,
                           documents=grouped_documents(content), kinds=KIND_NAMES,
                           concept_maps=concept_maps_of(content),
                           editable=_editable(shown), errors={})

    @expose("/<int:version>/gates")
    def gates(self, version: int) -> Any:
        """The version's gates, as a fragment the drafts list and draft page load."""
        _version(version)
        content = services().versions.content(version)
        connections = {str(d["data"].get("id")) for d in content["documents"]
                       if d["kind"] == "connection" and isinstance(d["data"], dict)}
        return self.render("console/studio_gates.html", version=version,
                           gates=services().versions.gates(version),
                           finding_words=lambda text: finding_markup(version, text, connections),
                           unset=unset_secrets(content, services().versions.content()),
                           full=request.args.get("full") == "1")

    @expose("/<int:version>/summary", methods=("POST",))
    def summary(self, version: int) -> Any:
        _author_only()
        summary = request.form.get("summary", "").strip()[:500]
        if not summary:
            flash("Type the draft's new summary: it says what the change is for.", "error")
            return redirect(url_for(".draft", version=version))
        self._change(version, lambda: services().versions.edit(version, principal(),
                                                               summary=summary))
        flash("The draft's summary is changed.", "success")
        return redirect(url_for(".draft", version=version))

    @expose("/<int:version>/delete", methods=("GET", "POST"))
    def delete(self, version: int) -> Any:
        _author_only()
        shown = _version(version)
        if request.method == "GET":
            return self.render("console/studio_delete.html", version=shown)
        self._change(version, lambda: services().versions.delete_draft(version, principal()))
        flash(f"Draft version {version} is deleted; its history stays in the audit trail.",
              "success")
        return redirect(url_for(".index"))

    @expose("/<int:version>/submit", methods=("POST",))
    def submit(self, version: int) -> Any:
        _author_only()
        summary = request.form.get("summary", "").strip()[:500]
        if summary:
            self._change(version, lambda: services().versions.edit(
                version, principal(), summary=summary))
        self._change(version, lambda: services().versions.submit(version, principal()))
        flash(f"Version {version} is submitted for review: an approver checks its gates "
              "and approves or rejects it.", "success")
        return redirect(url_for(".draft", version=version))

    # ---- the route editor ------------------------------------------------------------

    @expose("/<int:version>/routes", methods=("GET", "POST"))
    def routes(self, version: int) -> Any:
        if request.method == "POST":
            _author_only()
        shown = _version(version)
        if not (request.args.get("path") or request.args.get("new")):
            return redirect(url_for(".draft", version=version))
        path = _route_path()
        content = services().versions.content(version)
        existing = next((d for d in content["documents"] if d["path"] == path), None)
        if existing is not None and existing["kind"] != "routes":
            abort(404, description=f"{path} is not a route table: open it in the YAML view")
        if request.method == "GET":
            unreadable = blocking(document_findings(content, path, "routes", existing["data"])
                                  ) if existing else []
            if unreadable:
                return self._unreadable_table(shown, path, unreadable)
            form = (from_document(existing["data"]) if existing
                    else RouteForm(path.removeprefix(ROUTES_FOLDER).removesuffix(".yaml")))
            written = to_document(form, complete=False)
            findings = document_findings(content, path, "routes", written.data) if existing else []
            return self._route_editor(shown, path, content, form, {},
                                      findings_by_key(findings, written.place))
        self._may_change(shown)
        form = read_form(request.form.to_dict(flat=False))
        action = request.form.get("action", "")
        if action != "save":
            written = to_document(apply(form, action), complete=False)
            return self._route_editor(shown, path, content, form, written.errors, {})
        return self._save_routes(shown, path, content, apply(form, ""))

    def _unreadable_table(self, shown: dict[str, Any], path: str,
                          findings: list[Finding]) -> Any:
        """A table whose shape the form cannot show (its rows a text, say): what is
        wrong, and the YAML view to put it right."""
        return self.render("console/studio_routes.html", version=shown, path=path,
                           unreadable=findings, editable=_editable(shown))

    def _save_routes(self, shown: dict[str, Any], path: str, content: dict[str, Any],
                     form: RouteForm) -> Any:
        written = to_document(form)
        errors = dict(written.errors)
        if not errors:
            found = blocking(document_findings(content, path, "routes", written.data))
            errors = findings_by_key(found, written.place)
        if not errors:
            self._change(shown["version"], lambda: services().versions.put_document(
                shown["version"], principal(), path, "routes", written.data))
            flash(f"Saved {path}.", "success")
            return redirect(url_for(".routes", version=shown["version"], path=path))
        return self._route_editor(shown, path, content, form, errors, {}, 400)

    def _route_editor(self, shown: dict[str, Any], path: str, content: dict[str, Any],
                      form: RouteForm, errors: dict[str, str],
                      warnings: dict[str, list[str]], status: int = 200) -> Any:
        fragment = request.headers.get("HX-Request") == "true"
        return self.render(
            "console/studio_route_fragment.html" if fragment else "console/studio_routes.html",
            version=shown, path=path, form=form, errors=errors, warnings=warnings,
            editable=_editable(shown), connections=connections_of(content),
            kinds=message_kinds(content["documents"]), ops=OPS, groups=GROUPS,
            checkpoints=CHECKPOINTS, canonical=canonical_fields(), hl7=hl7_fields(),
            words_for=words_for, id_from=id_from, item_lists=item_lists(),
            item_fields=item_fields, item_noun=item_noun, shared_list=shared_list), status

    # ---- the YAML view ---------------------------------------------------------------

    @expose("/<int:version>/yaml", methods=("GET", "POST"))
    def yaml(self, version: int) -> Any:
        if request.method == "POST":
            _author_only()
        shown = _version(version)
        path = request.args.get("path", "")
        if not path:
            return redirect(url_for(".draft", version=version))
        content = services().versions.content(version)
        document = next((d for d in content["documents"] if d["path"] == path), None)
        if document is None:
            abort(404, description=f"version {version} has no document {path!r}")
        if request.method == "GET":
            text = document_yaml(path, document["data"])
            state = yaml_page_state(content, document, text, saving=False)
            return self._yaml_page(shown, document, text, state)
        self._may_change(shown)
        text = request.form.get("text", "").replace("\r\n", "\n")
        state = yaml_page_state(content, document, text, saving=True)
        if state.refused:
            return self._yaml_page(shown, document, text, state, 400)
        self._change(version, lambda: services().versions.put_document(
            version, principal(), path, document["kind"], state.data))
        flash(f"Saved {path}.", "success")
        return redirect(url_for(".yaml", version=version, path=path))

    def _yaml_page(self, shown: dict[str, Any], document: dict[str, Any], text: str,
                   state: Any, status: int = 200) -> Any:
        return self.render("console/studio_yaml.html", version=shown, document=document,
                           text=text, state=state, editable=_editable(shown),
                           kinds=KIND_NAMES), status


    # ---- refusals ----------------------------------------------------------------------

    def _change(self, version: int, change: Any) -> Any:
        """Make ``change``; a refusal by change control becomes 403 (audited), or the
        draft's page saying why and what to do instead (409 for a version's state)."""
        try:
            return change()
        except Forbidden:
            deny("studio.change")
        except NotFound as error:
            abort(400, description=_said(error))
        except (Conflict, Invalid) as error:
            self._refuse(version, _said(error), 409 if isinstance(error, Conflict) else 400)

    def _may_change(self, shown: dict[str, Any]) -> None:
        """Refuse a change to a version this user may only read, before checking what
        they sent: 403 (audited) for someone else's draft, 409 for a version past draft."""
        _author_only()
        if _editable(shown):
            return
        if shown["status"] != lifecycle.DRAFT:
            self._refuse(shown["version"], f"Version {shown['version']} is "
                         f"{shown['status'].replace('_', ' ')}: only a draft can "
                         "be changed. Start a new draft from it to change it.", 409)
        deny("studio.change")

    def _refuse(self, version: int, said: str, status: int) -> None:
        """Stop the request with the version's page (the drafts list if it is gone),
        the refusal flashed on it, and ``status``."""
        flash(said, "error")
        try:
            page = self._draft_page(services().versions.show(version))
        except NotFound:
            page = self._drafts_page({}, {})[0]
        abort(make_response(page, status))


def _route_path() -> str:
    """The route table the editor opens: ?path=rules/routes/x.yaml, or ?new=x."""
    new = request.args.get("new", "").strip().lower()
    path = f"{ROUTES_FOLDER}{id_from(new)}.yaml" if new else request.args.get("path", "")
    name = path.removeprefix(ROUTES_FOLDER).removesuffix(".yaml")
    if not path.startswith(ROUTES_FOLDER) or not path.endswith(".yaml") or not name \
            or "/" in name or id_from(name) != name:
        abort(400, description="Name a route table: lower-case letters, digits and hyphens")
    return path
