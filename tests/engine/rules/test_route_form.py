"""The route form read from a document and written back: every shipped route table and
every template's comes back exactly as written, scopes included, and what a person
changes in it keeps the types, lists and groups the document gave the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.rules.draft_templates import TEMPLATES, instantiate, read_templates
from engine.rules.route_document import list_items, to_document
from engine.rules.route_form import (
    Node,
    RouteForm,
    Row,
    apply,
    from_document,
    shared_list,
)
from tests.queue_rows import ROOT

POTASSIUM_SCOPE = yaml.safe_load("""
some:
  of: "results[*]"
  where: {all: [{field: code, op: eq, value: "2823-3"},
                {field: "abnormal_flags[*]", op: in, value: [HH, LL]}]}
""")


def _tables() -> list[tuple[str, dict[str, Any]]]:
    shipped = [(str(path.relative_to(ROOT)), yaml.safe_load(path.read_text(encoding="utf-8")))
               for path in sorted((ROOT / "rules/routes").glob("*.yaml"))]
    templates = [(f"{template.id}: {doc['path']}", doc["data"])
                 for template in read_templates(Path(ROOT) / TEMPLATES)
                 for doc in instantiate(template, template.examples(),
                                        {"documents": []})["documents"]
                 if doc["kind"] == "routes"]
    return shipped + templates


def test_the_tables_to_round_trip_are_all_there():
    names = [name for name, _data in _tables()]
    assert len(names) >= 13 and "rules/routes/results.yaml" in names
    assert sum(": rules/routes/" in name for name in names) == 4  # one per template


@pytest.mark.parametrize(("name", "data"), _tables(), ids=[n for n, _d in _tables()])
def test_every_shipped_and_template_route_table_comes_back_exactly(name, data):
    written = to_document(from_document(data))
    assert written.errors == {}
    assert written.data == data


def row(when: Any, **more: Any) -> dict[str, Any]:
    return {"id": "r", **more, "when": when, "to": ["x"]}


@pytest.mark.parametrize("data", [
    row(POTASSIUM_SCOPE, match={"type": "ORU", "event": ["R01"]}),
    row({"all": [{"any": [{"field": "patient.gender", "op": "eq", "value": "F"},
                          {"field": "patient.gender", "op": "eq", "value": "M"}]}]}),
    row({"all": [{"field": "patient.gender", "op": "eq", "value": "F"}]}),
    row({"any": [{"field": "event.code", "op": "in", "value": [1, 2.5, True]}]}),
    row({"field": "event.code", "op": "in", "value": ["Smith, J", '"quoted"', " spaced"]}),
    row({"every": {"of": "orders[*]", "where": {"not": {"field": "status", "op": "eq",
                                                        "value": 5}}}}),
    row({"all": [POTASSIUM_SCOPE, {"hl7": "MSH-4", "op": "eq", "value": "LAB"}]}),
    row({"some": {"of": "results[*]", "where": {"any": [
        {"field": "code", "op": "eq", "value": "2823-3"},
        {"all": [{"field": "value.number", "op": "gt", "value": 7}]}]}}}),
])
def test_written_shapes_come_back_as_written(data):
    document = {"id": "t", "rows": [data]}
    assert to_document(from_document(document)).data == document


def test_a_changed_list_keeps_numbers_among_numbers_and_takes_quoted_commas():
    form = from_document({"id": "t", "rows": [row({"field": "event.code", "op": "in",
                                                   "value": [1, 2]})]})
    leaf = form.rows[0].when.children[0]
    assert leaf.value == "1, 2"
    leaf.value = '1, 3, "Smith, J"'
    assert to_document(form).data["rows"][0]["when"]["value"] == [1, 3, "Smith, J"]
    assert list_items(' HH , "a, b",, LL') == ["HH", "a, b", "LL"]


def test_a_new_row_writes_its_one_condition_alone_and_a_scope_as_the_analyst_built_it():
    form = apply(RouteForm("t"), "add-row")
    form.rows[0].to = ["x"]
    for action in ("add-scope:rows-0-when", "add-condition:rows-0-when-0"):
        apply(form, action)
    scope = form.rows[0].when.children[0]
    scope.of = "results[*]"
    scope.children[0].path, scope.children[0].value = "code", "2823-3"
    scope.children[1].path, scope.children[1].op = "abnormal_flags[*]", "in"
    scope.children[1].value = "HH, LL"
    assert to_document(form).data["rows"][0]["when"] == POTASSIUM_SCOPE


def test_two_conditions_on_results_are_gathered_to_test_one_result():
    group = Node("all", [Node(path="results[*].code", value="2823-3"),
                         Node(source="hl7", path="MSH-4", value="LAB"),
                         Node(path="results[*].abnormal_flags[*]", op="in", value="HH, LL")],
                 lone=True)
    form = RouteForm("t", rows=[Row(id="r", when=group, to=["x"])])
    assert shared_list(group) == "results[*]"
    apply(form, "one-item:rows-0-when")
    assert shared_list(form.rows[0].when) is None
    assert to_document(form).data["rows"][0]["when"] == {"all": [
        POTASSIUM_SCOPE, {"hl7": "MSH-4", "op": "eq", "value": "LAB"}]}


def test_scope_problems_are_placed_beside_their_fields():
    form = from_document({"id": "t", "rows": [row({"some": {"of": "results[*]", "where": {
        "all": [{"field": "nope", "op": "eq", "value": "1"},
                {"hl7": "OBX-3", "op": "eq", "value": "1"},
                {"some": {"of": "orders[*]", "where": {"field": "status", "op": "exists"}}}]}}})]})
    written = to_document(form)
    assert written.errors == {
        "rows-0-when-0-0-path": "'nope' is not a field of the items of results[*]: pick one "
                                "from the list, e.g. code",
        "rows-0-when-0-1-path": "Inside 'for one result' a condition reads the item's fields, "
                                "not HL7: pick a record field, or move this condition out of "
                                "the group",
        "rows-0-when-0-2": "This is already inside 'for one result': test the item's fields "
                           "here directly, without a second scope"}
    assert written.place("rows[0].when.some.where.all[0].field") == "rows-0-when-0-0-path"
    assert written.place("rows[0].when.some.of") == "rows-0-when-0-of"
    empty = apply(RouteForm("t"), "add-row")
    apply(empty, "add-scope:rows-0-when")
    assert to_document(empty).errors["rows-0-when-0-of"].startswith("Pick the list")


def test_types_and_destinations_picked_in_the_pickers_order_keep_the_written_order():
    form = from_document({"id": "t", "rows": [{"id": "r", "match": {"type": ["ORM", "OML"]},
                                               "to": ["b", "a"]}]})
    form.rows[0].types, form.rows[0].to = ["OML", "ORM", "ADT"], ["a", "b"]  # as posted
    assert to_document(form).data["rows"][0] == {
        "id": "r", "match": {"type": ["ORM", "OML", "ADT"]}, "to": ["b", "a"]}
