"""Templates for new drafts: the routes, exception policies, rule tests and catalog
stubs of the integrations most sites build first (referral intake, discharge
coordination, lab-result routing, appointment reminders), ready for an analyst to
start from.

A template is a folder under ``rules/templates/``: ``template.yaml`` (its name, what
it does, the parameters it asks for, what is left to fill in) beside a configuration
root (``rules/``, ``catalog/``) read the way every configuration is. Parameters are
written ``${name}`` in file names, values and test messages; ``${name:env}`` is the
value as an environment variable's name would spell it (``cardiology-pager`` ->
``CARDIOLOGY_PAGER``), so a catalog stub names its secret's variable, never a secret.

The stubs leave owners and the agreement out on purpose: a draft made from a template
fails the catalog-completeness gate until a person has named who owns each new
connection.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.errors import SwitchboardError
from engine.model.schemas import schema_errors
from engine.rules.findings import Finding
from engine.rules.lint import lint
from engine.rules.snapshot import from_content
from engine.rules.source import RuleSource, read_rule_source

# Under a configuration root; the folder of each template is its id.
TEMPLATES = "rules/templates"
TEMPLATE_FILE = "template.yaml"
PLACEHOLDER = re.compile(r"\$\{([a-z_]+)(?::(env))?\}")
# What each kind of parameter accepts, and how to say so when a value is refused.
KINDS: dict[str, tuple[re.Pattern[str], str]] = {
    "name": (re.compile(r"^[a-z][a-z0-9-]{1,62}$"),
             "a short name: lower-case letters, digits and hyphens, starting with a letter"),
    "code": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,39}$"),
             "a code: letters, digits, dots and hyphens"),
    "text": (re.compile(r"^[^\x00-\x1f\x7f${}]{1,80}$"),
             "text of at most 80 characters, on one line, without $, { or }"),
}


class TemplateError(SwitchboardError):
    """A template cannot be read, or cannot be made into a draft as asked."""

    def __init__(self, problem: str, *, problems: Mapping[str, str] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(problem, hint=hint)
        self.problems = dict(problems or {})  # parameter -> what is wrong with its value


@dataclass(frozen=True)
class Parameter:
    id: str
    label: str
    kind: str
    example: str


@dataclass(frozen=True)
class DraftTemplate:
    id: str
    name: str
    description: str
    parameters: tuple[Parameter, ...]
    to_fill_in: tuple[str, ...]
    source: RuleSource  # its documents and test messages, placeholders unfilled

    def examples(self) -> dict[str, str]:
        return {parameter.id: parameter.example for parameter in self.parameters}


# -- reading (the one I/O here) -----------------------------------------------------------


def read_templates(folder: Path) -> list[DraftTemplate]:
    """Every template under ``folder`` (``rules/templates``), by id; none if it is absent."""
    if not folder.is_dir():
        return []
    return [read_template(path.parent) for path in sorted(folder.glob(f"*/{TEMPLATE_FILE}"))]


def read_template(folder: Path) -> DraftTemplate:
    about = yaml.safe_load((folder / TEMPLATE_FILE).read_text(encoding="utf-8"))
    problems = schema_errors("template", about)
    if problems:
        where, problem = problems[0]
        raise TemplateError(f"template {folder.name}: {TEMPLATE_FILE}: {where}: {problem}")
    source = read_rule_source(folder)
    if source.findings:
        raise TemplateError(f"template {folder.name} cannot be read: {source.findings[0]}")
    parameters = tuple(Parameter(str(p["id"]), str(p["label"]), str(p["kind"]),
                                 str(p["example"])) for p in about["parameters"])
    template = DraftTemplate(str(about["id"]), str(about["name"]),
                             " ".join(str(about["description"]).split()), parameters,
                             tuple(str(line) for line in about.get("to_fill_in") or ()),
                             source)
    _check_placeholders(template)
    return template


def _check_placeholders(template: DraftTemplate) -> None:
    """Every placeholder a template writes must be one of its parameters: a typo would
    otherwise reach a draft as the literal text ``${destinaton}``."""
    known = {parameter.id for parameter in template.parameters}
    unknown = sorted({name for text in _texts(template.source)
                      for name, _how in PLACEHOLDER.findall(text)} - known)
    if unknown:
        raise TemplateError(f"template {template.id} writes unknown parameters: "
                            f"{', '.join(unknown)}", hint="Declare them in template.yaml")


def _texts(source: RuleSource) -> list[str]:
    """Every text a placeholder can be in: paths, values and test messages."""
    texts = [doc.path for doc in source.documents] + list(source.files)
    texts += [data.decode("utf-8", "replace") for data in source.files.values()]

    def keep(text: str) -> str:
        texts.append(text)
        return text

    for doc in source.documents:
        _walk(doc.data, keep)
    return texts


# -- making a draft's content (pure) ------------------------------------------------------


def check_values(template: DraftTemplate, values: Mapping[str, str]) -> dict[str, str]:
    """The values, trimmed; TemplateError with each refused parameter's reason."""
    clean, problems = {}, {}
    for parameter in template.parameters:
        value = str(values.get(parameter.id) or "").strip()
        pattern, words = KINDS[parameter.kind]
        if not value:
            problems[parameter.id] = f"Enter {parameter.label[:1].lower()}{parameter.label[1:]}"
        elif not pattern.match(value):
            problems[parameter.id] = f"Use {words}, for example {parameter.example}"
        clean[parameter.id] = value
    if problems:
        raise TemplateError(f"the {template.name} template needs other values",
                            problems=problems, hint="Correct the values it names")
    return clean


def instantiate(template: DraftTemplate, values: Mapping[str, str],
                content: Mapping[str, Any]) -> dict[str, Any]:
    """``content`` (a version's) with the template's documents and test messages added,
    its parameters filled in. A file the content already has is never overwritten."""
    filled = check_values(template, values)

    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: _value(filled, m.group(1), m.group(2)), text)

    documents = [{"path": fill(doc.path), "kind": doc.kind, "data": _walk(doc.data, fill)}
                 for doc in template.source.documents]
    files = {fill(path): base64.b64encode(fill(data.decode("utf-8")).encode("utf-8"))
             .decode("ascii") for path, data in template.source.files.items()}
    existing = {doc["path"] for doc in content["documents"]} | set(content.get("files", {}))
    clashes = sorted(existing & ({doc["path"] for doc in documents} | set(files)))
    if clashes:
        raise TemplateError(
            f"the draft already has {', '.join(clashes)}",
            hint="Choose other short names: a template never overwrites what is there")
    return {
        "documents": sorted([*content["documents"], *documents], key=lambda d: d["path"]),
        "concept_maps": dict(content.get("concept_maps", {})),
        "files": dict(sorted({**content.get("files", {}), **files}.items())),
    }


def _value(values: Mapping[str, str], name: str, how: str | None) -> str:
    value = values[name]
    return value.upper().replace("-", "_").replace(".", "_") if how == "env" else value


def _walk(data: Any, fill: Callable[[str], str]) -> Any:
    if isinstance(data, str):
        return fill(data)
    if isinstance(data, list):
        return [_walk(item, fill) for item in data]
    if isinstance(data, dict):
        return {key: _walk(value, fill) for key, value in data.items()}
    return data


def template_findings(template: DraftTemplate, content: Mapping[str, Any]) -> list[Finding]:
    """What lint says of ``template`` filled in with its examples on ``content``, except
    the owners its catalog stubs leave for a person to name: how templates are linted
    like every other rule."""
    where = f"rules/templates/{template.id}"
    try:
        filled = instantiate(template, template.examples(), content)
    except TemplateError as error:
        return [Finding(where, "(template)", str(error), "template")]
    return [Finding(f"{where} ({finding.file})", finding.location, finding.problem,
                    finding.category)
            for finding in lint(from_content(filled))
            if finding.category != "incomplete-destination"]
