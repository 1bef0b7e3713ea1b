"""Starting a draft from a template (engine.rules.draft_templates): the template's
questions in the analyst's words, each answer checked beside its field, and what is
left to fill in said before and after. A mixin of the studio's view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose

from admin.console import studio_access as access
from admin.services import draft_templates, services
from engine.queues import Invalid, NotFound
from engine.rules import lifecycle
from engine.rules.draft_templates import (
    PLACEHOLDER,
    DraftTemplate,
    TemplateError,
    check_values,
    instantiate,
)


class TemplateStarts:
    """``/studio/templates/<id>``: a template's questions, and the draft they make."""

    render: Callable[..., Any]  # the view's, from Flask-Admin's BaseView

    @expose("/templates/<template_id>", methods=("GET", "POST"))
    def template(self, template_id: str) -> Any:
        access.author_only()
        template = draft_templates().get(template_id)
        if template is None:
            abort(404, description=f"There is no template {template_id!r}: the drafts page "
                                   "lists those there are")
        if request.method == "GET":
            return self._template_page(template, {"summary": template.name}, {}, None)
        values = {p.id: request.form.get(p.id, "").strip() for p in template.parameters}
        form = {**values, "summary": request.form.get("summary", "").strip()[:500],
                "parent": request.form.get("parent", "")}
        errors: dict[str, str] = {}
        if not form["summary"]:
            errors["summary"] = "Say what the change is for"
        try:
            check_values(template, values)
        except TemplateError as error:
            errors.update(error.problems)
        if errors:
            return self._template_page(template, form, errors, None, 400)
        parent = int(form["parent"]) if form["parent"].isdigit() else None
        try:
            created = services().versions.create_draft(
                _principal(), form["summary"], parent,
                change=lambda content: instantiate(template, values, content))
        except (TemplateError, Invalid, NotFound) as error:
            return self._template_page(template, form, {}, _said(error), 400)
        flash(f"Draft version {created['version']} started from the {template.name} "
              f"template. Still to fill in: {' '.join(template.to_fill_in)}", "success")
        return redirect(url_for(".draft", version=created["version"]))

    def _template_page(self, template: DraftTemplate, form: dict[str, str],
                       errors: dict[str, str], refused: str | None, status: int = 200) -> Any:
        versions = services().versions.history(per_page=200).items
        return self.render(
            "console/studio_template.html", chosen=template, form=form, errors=errors,
            refused=refused, adds=_adds(template),
            versions=[v for v in versions if v["status"] != lifecycle.DRAFT],
            published=next((v["version"] for v in versions
                            if v["status"] == lifecycle.PUBLISHED), None)), status


def _adds(template: DraftTemplate) -> list[tuple[str, str]]:
    """What a draft made from ``template`` gains: each document's kind and path, with
    the examples of the answers where the answers go (``rules/routes/‹cardiology-pager›.yaml``)."""
    words = {"routes": "Route table", "policies": "Exception policies",
             "tests": "Rule tests", "connection": "Catalog connection"}
    examples = template.examples()
    return [(words.get(doc.kind, doc.kind),
             PLACEHOLDER.sub(lambda m: f"‹{examples[m.group(1)]}›", doc.path))
            for doc in template.source.documents]


def _said(error: Exception) -> str:
    hint = getattr(error, "hint", None)
    return f"{error}. {hint}" if hint else str(error)



def _principal() -> Any:
    from admin.console.access import principal

    return principal()
