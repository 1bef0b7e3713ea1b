"""Rule documents as forms drawn from their schemas, and back: every shipped
connection, policy file and lookup table makes the same document from its untouched
form; values are typed as the schema says; the fields a branch of the schema adds
(a transport's endpoint, a backoff kind's settings) follow the values chosen."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.model.schemas import schema
from engine.rules.schema_form import (
    CHOICES,
    GROUP,
    ITEMS,
    LINES,
    PAIRS,
    FormField,
    form_fields,
    read_form,
)

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = [("connection", p) for p in sorted((ROOT / "catalog/connections").glob("*.yaml"))] + [
    ("policies", p) for p in sorted((ROOT / "rules/policies").glob("*.yaml"))] + [
    ("table", p) for p in sorted((ROOT / "rules/mappings/tables").glob("*.yaml"))]


def posted(fields: tuple[FormField, ...], form: dict[str, list[str]] | None = None) -> dict:
    """What a browser posts for ``fields`` as drawn."""
    form = {} if form is None else form
    for field in fields:
        if field.kind == GROUP:
            posted(field.fields, form)
        elif field.kind == ITEMS:
            for item in field.items:
                posted(item.fields, form)
        elif field.kind == CHOICES:
            form[field.name] = list(field.value)
        elif field.kind in (LINES, PAIRS):
            form[field.name] = ["\r\n".join(field.value)]
        else:
            form[field.name] = [field.value]
    return form


@pytest.mark.parametrize(("kind", "path"), SHIPPED, ids=[p.name for _k, p in SHIPPED])
def test_an_untouched_form_gives_back_the_document(kind, path):
    data = yaml.safe_load(path.read_text())
    back = read_form(schema(kind), posted(form_fields(schema(kind), data)), data)
    assert back.problems == {}
    assert back.data == data


def test_values_are_typed_as_the_schema_says_and_wrong_ones_named():
    form = {"id": ["pager"], "name": ["Pager"], "direction": ["outbound"], "transport": ["http"],
            "endpoint.url": ["https://pager.example/x"], "format": ["canonical-json"],
            "sla.availability": ["99.5"], "sla.max_delivery_minutes": ["5"],
            "agreement.kind": ["BAA"], "agreement.on_file": ["no"],
            "endpoint.headers": ["X-Api-Key = PAGER_KEY\nX-Tenant = PAGER_TENANT"]}
    back = read_form(schema("connection"), form)
    assert back.problems == {}
    assert back.data["sla"] == {"availability": 99.5, "max_delivery_minutes": 5}
    assert back.data["agreement"] == {"kind": "BAA", "on_file": False}
    assert back.data["endpoint"]["headers"] == {"X-Api-Key": {"secret_env": "PAGER_KEY"},
                                                "X-Tenant": {"secret_env": "PAGER_TENANT"}}
    wrong = read_form(schema("connection"), {**form, "sla.max_delivery_minutes": ["five"],
                                             "endpoint.headers": ["X-Api-Key: PAGER_KEY"]})
    assert wrong.problems == {
        "sla.max_delivery_minutes": "Enter a whole number, like 5",
        "endpoint.headers": "Write one per line as name = value, like "
                            "Authorization = PARTNER_FHIR_TOKEN"}


def test_the_fields_a_branch_adds_follow_the_choice():
    def names(fields):
        return {f.name for f in fields} | {n for f in fields for n in names(f.fields)}

    for transport, wanted, absent in (("mllp", "endpoint.port", "endpoint.url"),
                                      ("http", "endpoint.auth_secret_env", "endpoint.port"),
                                      ("task-queue", "endpoint.queue", "endpoint.url")):
        found = names(form_fields(schema("connection"), {"transport": transport}))
        assert wanted in found and absent not in found, transport
    assert "task_access" not in names(form_fields(schema("connection"), {"transport": "http"}))
    policy = {"policies": [{"backoff": {"kind": "fixed"}}]}
    policies = next(f for f in form_fields(schema("policies"), policy) if f.key == "policies")
    found = names(policies.items[0].fields)
    assert "policies[0].backoff.delay" in found and "policies[0].backoff.initial" not in found


def test_text_that_differs_only_in_whitespace_a_form_cannot_keep_stays_as_written():
    data = yaml.safe_load((ROOT / "catalog/connections/bed-board.yaml").read_text())
    form = posted(form_fields(schema("connection"), data))
    form["recovery_procedure"] = [form["recovery_procedure"][0].rstrip() + "  \r\n"]
    assert read_form(schema("connection"), form, data).data == data
    form["recovery_procedure"] = ["Call the bed managers."]
    assert read_form(schema("connection"), form, data).data["recovery_procedure"] == (
        "Call the bed managers.")
