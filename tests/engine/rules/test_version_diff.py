"""The semantic diff between two rule-set versions, on the shipped configuration: each
case edits a copy of it and states the lines a reviewer should read."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from engine.rules.snapshot import to_content
from engine.rules.source import read_rule_source
from engine.rules.version_diff import SECTIONS, diff_contents, render_diff

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# The shipped configuration has no lookup-table document (only concept maps), so the
# base version gets one to show how table codes diff.
PRIORITY_TABLE = {
    "path": "rules/mappings/tables/priority.yaml", "kind": "table",
    "data": {"id": "priority", "description": "Order priority",
             "map": {"S": "stat", "R": "routine"}},
}
NEW_ROW = {"id": "critical-results-to-nurse", "match": {"type": "ORU"}, "to": ["nurse-review"]}
NEW_CASE = {"id": "empty-oru", "message": {"inline": "MSH|^~\\&|"}, "expect": {"rows": []}}
NEW_CONNECTION = {
    "path": "catalog/connections/pharmacy.yaml", "kind": "connection",
    "data": {"id": "pharmacy", "name": "Pharmacy", "data_scope": ["patient.names"]},
}
NEW_FILE = "rules/tests/messages/new.hl7"
HELD_ROW = "abnormal-results-held-for-nurse-review"
EHR_POLICY = "policies/ehr-write-back: policy ehr-fhir / timeout, transport_error changed"
SEX_MAP = "rules/mappings/concept-maps/administrative-sex.csv"

Content = dict[str, Any]


@cache
def _shipped() -> str:
    # Kept as JSON so that no test can change what the next one starts from.
    content = to_content(read_rule_source(PROJECT_ROOT))
    content["documents"].append(PRIORITY_TABLE)
    return json.dumps(content)


@pytest.fixture
def before() -> Content:
    content: Content = json.loads(_shipped())
    return content


def _edited(content: Content, edit: Callable[[Content], object]) -> Content:
    after = copy.deepcopy(content)
    edit(after)
    return after


def _doc(content: Content, path: str) -> dict[str, Any]:
    return next(doc for doc in content["documents"] if doc["path"] == path)


def _data(content: Content, path: str) -> Any:
    return _doc(content, path)["data"]


def _rows(content: Content) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = _data(content, "rules/routes/results.yaml")["rows"]
    return rows


def _ehr_policy(content: Content) -> dict[str, Any]:
    policy: dict[str, Any] = _data(content, "rules/policies/ehr.yaml")["policies"][0]
    return policy


def _lab_system(content: Content) -> dict[str, Any]:
    connection: dict[str, Any] = _data(content, "catalog/connections/lab-system.yaml")
    return connection


def _case(content: Content) -> dict[str, Any]:
    case: dict[str, Any] = _data(content, "rules/tests/results.yaml")["cases"][0]
    return case


def _mapping_fields(content: Content, name: str) -> dict[str, Any]:
    fields: dict[str, Any] = _data(content, f"rules/mappings/{name}.yaml")["fields"]
    return fields


def _table_map(content: Content) -> dict[str, Any]:
    entries: dict[str, Any] = _data(content, PRIORITY_TABLE["path"])["map"]
    return entries


def _sheet(content: Content, old: str, new: str) -> None:
    assert old in content["concept_maps"][SEX_MAP], "the edit would change nothing"
    content["concept_maps"][SEX_MAP] = content["concept_maps"][SEX_MAP].replace(old, new)


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    target[key] = value


def _move(content: Content, path: str, new_path: str) -> None:
    _doc(content, path)["path"] = new_path


def _swap_south_and_north(content: Content) -> None:
    rows = _rows(content)
    rows[2], rows[3] = rows[3], rows[2]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


CASES = [
    pytest.param(
        lambda c: _rows(c)[0]["to"].__setitem__(0, "nurse-review"),
        [f"routes/results: row {HELD_ROW} changed: to[0] 'ehr-fhir' -> 'nurse-review'"],
        id="route-row-destination",
    ),
    pytest.param(
        lambda c: _rows(c)[2]["when"]["any"][0]["value"].__setitem__(1, "N4"),
        ["routes/results: row results-to-north-clinic changed: "
         "when.any[0].value[1] 'NORTH' -> 'N4'"],
        id="route-row-condition",
    ),
    pytest.param(
        lambda c: _set(_rows(c)[0]["checkpoint"], "due", "1h"),
        [f"routes/results: row {HELD_ROW} changed: checkpoint.due '2h' -> '1h'"],
        id="route-row-checkpoint",
    ),
    pytest.param(
        lambda c: _rows(c)[0]["checkpoint"].pop("description"),
        [f"routes/results: row {HELD_ROW} changed: checkpoint.description "
         "'Review abnormal results before they are written to the chart.' -> (absent)"],
        id="route-row-field-removed",
    ),
    pytest.param(
        lambda c: _set(_rows(c)[1]["match"], "type", ["ORU", "OUL"]),
        ["routes/results: row normal-results-to-ehr changed: match.type added 'OUL'"],
        id="route-row-message-types-are-a-set",
    ),
    pytest.param(
        lambda c: _rows(c).insert(0, NEW_ROW),
        # Every row after it shifts, but none of them moved.
        [f"routes/results: row critical-results-to-nurse added: {_json(NEW_ROW)}"],
        id="route-row-added-first",
    ),
    pytest.param(
        _swap_south_and_north,
        # Either row could be said to move; the diff picks the same one both ways.
        ["routes/results: row results-to-north-clinic moved: rows[2] -> rows[3]"],
        id="route-rows-swapped",
    ),
    pytest.param(
        lambda c: _rows(c).append(_rows(c).pop(0)),
        [f"routes/results: row {HELD_ROW} moved: rows[0] -> rows[3]"],
        id="route-row-moved-last",
    ),
    pytest.param(
        lambda c: _move(c, "rules/routes/results.yaml", "rules/routes/lab-results.yaml"),
        ["routes/results: renamed rules/routes/results.yaml -> rules/routes/lab-results.yaml"],
        id="route-table-renamed",
    ),
    pytest.param(
        lambda c: (_move(c, "rules/routes/results.yaml", "rules/routes/lab-results.yaml"),
                   _rows_at(c, "rules/routes/lab-results.yaml")[1]["to"].append("clinic-north")),
        ["routes/results: renamed rules/routes/results.yaml -> rules/routes/lab-results.yaml",
         "routes/results: row normal-results-to-ehr changed: to[1] (absent) -> 'clinic-north'"],
        id="route-table-renamed-and-changed",
    ),
    pytest.param(
        lambda c: _set(_mapping_fields(c, "results")["results"]["fields"], "units", "-6.2"),
        ["mapping/results: field results changed: fields.units '-6.1' -> '-6.2'"],
        id="mapping-entry-nested",
    ),
    pytest.param(
        lambda c: _set(_mapping_fields(c, "patient"), "patient.sex_code", "PID-8.1"),
        ["mapping/patient: field patient.sex_code changed: 'PID-8' -> 'PID-8.1'"],
        id="mapping-entry",
    ),
    pytest.param(
        lambda c: _set(_mapping_fields(c, "patient"), "patient.nickname", "PID-5.9"),
        ["mapping/patient: field patient.nickname added: 'PID-5.9'"],
        id="mapping-entry-added",
    ),
    pytest.param(
        lambda c: _data(c, "rules/mappings/results.yaml")["applies_to"].append("MDM^*"),
        ["mapping/results: applies_to added 'MDM^*'"],
        id="mapping-applies-to-is-a-set",
    ),
    pytest.param(
        lambda c: _set(_data(c, "rules/mappings/results.yaml"), "requires_segment", "OBR"),
        ["mapping/results: requires_segment 'OBX' -> 'OBR'"],
        id="mapping-setting",
    ),
    pytest.param(
        lambda c: (_set(_table_map(c), "S", "urgent"), _set(_table_map(c), "A", "asap"),
                   _table_map(c).pop("R")),
        ["table/priority: code A added: 'asap'",
         "table/priority: code R removed: 'routine'",
         "table/priority: code S changed: 'stat' -> 'urgent'"],
        id="lookup-table-codes",
    ),
    pytest.param(
        lambda c: _move(c, PRIORITY_TABLE["path"], "rules/mappings/tables/order-priority.yaml"),
        ["table/priority: renamed rules/mappings/tables/priority.yaml -> "
         "rules/mappings/tables/order-priority.yaml"],
        id="lookup-table-renamed",
    ),
    pytest.param(
        lambda c: _sheet(c, "F,Female,HL70001,,,,female,", "F,Female,HL70001,,,,feminine,"),
        ["concept-map/administrative-sex: row F changed: HL7 FHIR Code 'female' -> 'feminine'"],
        id="concept-map-row",
    ),
    pytest.param(
        lambda c: _set(_ehr_policy(c), "max_attempts", 30),
        [f"{EHR_POLICY}: max_attempts 40 -> 30"],
        id="policy-retry-count",
    ),
    pytest.param(
        lambda c: _set(_ehr_policy(c)["backoff"], "initial", "20s"),
        [f"{EHR_POLICY}: backoff.initial '10s' -> '20s'"],
        id="policy-backoff",
    ),
    pytest.param(
        lambda c: _set(_ehr_policy(c)["escalation"], "page_technical_owner", 1),
        [f"{EHR_POLICY}: escalation.page_technical_owner true -> 1"],
        id="policy-true-is-not-1",
    ),
    pytest.param(
        lambda c: _set(_ehr_policy(c), "connections", ["ehr-fhir", "portal-fhir"]),
        ["policies/ehr-write-back: policy ehr-fhir / timeout, transport_error removed: "
         + _json({"backoff": {"factor": 2, "initial": "10s", "jitter": 0.2, "kind": "exponential",
                              "max_delay": "1h"},
                  "connections": ["ehr-fhir"], "dead_letter": {"owner_role": "operator"},
                  "error_classes": ["transport_error", "timeout"],
                  "escalation": {"after": "15m", "notify_role": "admin",
                                 "page_technical_owner": True},
                  "max_attempts": 40}),
         "policies/ehr-write-back: policy ehr-fhir, portal-fhir / timeout, transport_error added: "
         + _json({"backoff": {"factor": 2, "initial": "10s", "jitter": 0.2, "kind": "exponential",
                              "max_delay": "1h"},
                  "connections": ["ehr-fhir", "portal-fhir"],
                  "dead_letter": {"owner_role": "operator"},
                  "error_classes": ["transport_error", "timeout"],
                  "escalation": {"after": "15m", "notify_role": "admin",
                                 "page_technical_owner": True},
                  "max_attempts": 40})],
        id="policy-covering-other-connections-is-another-policy",
    ),
    pytest.param(
        lambda c: _set(_lab_system(c)["technical_owner"], "phone", "+1 555 0100 ext 4411"),
        ["connection/lab-system: technical_owner.phone '+1 555 0100 ext 4410' -> "
         "'+1 555 0100 ext 4411'"],
        id="catalog-owner",
    ),
    pytest.param(
        lambda c: (_lab_system(c)["data_scope"].remove("merge"),
                   _lab_system(c)["data_scope"].insert(0, "patient.race")),
        ["connection/lab-system: data_scope added 'patient.race'; removed 'merge'"],
        id="catalog-data-scope",
    ),
    pytest.param(
        lambda c: _set(_lab_system(c), "classification", "limited"),
        ["connection/lab-system: classification 'phi' -> 'limited'"],
        id="catalog-classification",
    ),
    pytest.param(
        lambda c: c["documents"].append(NEW_CONNECTION),
        ["connection/pharmacy: added (catalog/connections/pharmacy.yaml)",
         "connection/pharmacy: data_scope added 'patient.names'",
         "connection/pharmacy: id (absent) -> 'pharmacy'",
         "connection/pharmacy: name (absent) -> 'Pharmacy'"],
        id="catalog-connection-added",
    ),
    pytest.param(
        lambda c: _move(c, "catalog/connections/lab-system.yaml", "catalog/connections/lis.yaml"),
        ["connection/lab-system: renamed catalog/connections/lab-system.yaml -> "
         "catalog/connections/lis.yaml"],
        id="catalog-connection-renamed",
    ),
    pytest.param(
        lambda c: _case(c)["expect"]["destinations"].append("lab-system"),
        ["tests/results: case high-glucose-held-for-nurse-review changed: "
         "expect.destinations added 'lab-system'"],
        id="rule-test-expectation",
    ),
    pytest.param(
        lambda c: _data(c, "rules/tests/results.yaml")["cases"].append(NEW_CASE),
        [f"tests/results: case empty-oru added: {_json(NEW_CASE)}"],
        id="rule-test-added",
    ),
    pytest.param(
        lambda c: _set(c["files"], NEW_FILE, base64.b64encode(b"MSH|^~\\&|").decode()),
        [f"file {NEW_FILE}: added (9 bytes)"],
        id="message-file-added",
    ),
]


def _rows_at(content: Content, path: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = _data(content, path)["rows"]
    return rows


@pytest.mark.parametrize(("edit", "lines"), CASES)
def test_an_edit_reads_as_what_changed(
    before: Content, edit: Callable[[Content], object], lines: list[str]
) -> None:
    diff = diff_contents(before, _edited(before, edit))
    assert render_diff(diff).splitlines() == lines
    assert not diff.is_empty


@pytest.mark.parametrize("edit", [case.values[0] for case in CASES], ids=[c.id for c in CASES])
def test_swapping_the_versions_mirrors_the_diff(
    before: Content, edit: Callable[[Content], object]
) -> None:
    after = _edited(before, edit)
    forward, backward = diff_contents(before, after), diff_contents(after, before)
    assert backward.as_dict() == _mirrored(forward.as_dict())
    assert json.loads(json.dumps(forward.as_dict())) == forward.as_dict()


SAME_MEANING = [
    pytest.param(lambda c: None, id="identical"),
    pytest.param(lambda c: c["documents"].reverse(), id="documents-listed-in-another-order"),
    pytest.param(lambda c: _ehr_policy(c)["error_classes"].reverse(), id="error-classes-reordered"),
    pytest.param(lambda c: _lab_system(c)["data_scope"].reverse(), id="data-scope-reordered"),
    pytest.param(lambda c: _case(c)["expect"]["rows"].reverse(), id="expected-rows-reordered"),
    pytest.param(lambda c: _set(_rows(c)[0]["match"], "type", ["ORU"]), id="one-name-as-a-list"),
    pytest.param(lambda c: _set(_ehr_policy(c)["backoff"], "factor", 2.0), id="2-is-2.0"),
    pytest.param(lambda c: _sheet(c, "F,Female,", " F , Female ,"), id="sheet-cell-padding"),
]


@pytest.mark.parametrize("edit", SAME_MEANING)
def test_edits_that_keep_the_meaning_give_an_empty_diff(
    before: Content, edit: Callable[[Content], object]
) -> None:
    diff = diff_contents(before, _edited(before, edit))
    assert diff.is_empty
    assert diff.as_dict() == {section: [] for section in SECTIONS}
    assert render_diff(diff) == "no differences"


def test_as_dict_shape(before: Content) -> None:
    after = _edited(before, lambda c: (_rows(c)[0]["to"].__setitem__(0, "nurse-review"),
                                       _swap_south_and_north(c)))
    assert diff_contents(before, after).as_dict() == {
        "routes": [{
            "kind": "routes", "key": "results", "status": "changed",
            "path": {"before": "rules/routes/results.yaml", "after": "rules/routes/results.yaml"},
            "settings": [],
            "entries": [{"key": HELD_ROW, "status": "changed", "changes": [
                {"path": "to[0]", "before": "ehr-fhir", "after": "nurse-review"}]}],
            "moved": [{"key": "results-to-north-clinic", "before": 2, "after": 3}],
        }],
        "mappings": [], "policies": [], "catalog": [], "tests": [], "files": [], "other": [],
    }


def test_a_removed_row_carries_its_content(before: Content) -> None:
    removed = _rows(before)[3]
    diff = diff_contents(before, _edited(before, lambda c: _rows(c).pop(3)))
    (group,) = diff.routes
    assert [entry.as_dict() for entry in group.entries] == [
        {"key": "results-to-south-clinic", "status": "removed", "value": removed}
    ]
    assert group.moved == ()


@pytest.mark.parametrize(("path", "key", "label"), [
    ("rules/routes/results.yaml", "description", "routes/results"),
    ("catalog/connections/lab-system.yaml", "recovery_procedure", "connection/lab-system"),
    ("rules/policies/ehr.yaml", "description", "policies/ehr-write-back"),
])
def test_a_document_setting(before: Content, path: str, key: str, label: str) -> None:
    old = _data(before, path)[key]
    after = _edited(before, lambda c: _set(_data(c, path), key, "Rewritten."))
    assert render_diff(diff_contents(before, after)).splitlines() == [
        f"{label}: {key} {old!r} -> 'Rewritten.'"
    ]


def test_concept_map_rows_added_and_removed_by_code(before: Content) -> None:
    def edit(content: Content) -> None:
        # The official sheet has CRLF line breaks and none after its last line.
        _sheet(content, "O,Other,HL70001,,,,other,,Other,"
               "http://hl7.org/fhir/administrative-gender,,\r\n", "")
        content["concept_maps"][SEX_MAP] += "\r\nX,Unknown,HL70001,,,,unknown,,Unknown,,,"

    (group,) = diff_contents(before, _edited(before, edit)).mappings
    assert [entry.as_dict() for entry in group.entries] == [
        {"key": "O", "status": "removed", "value": {
            "HL7 v2 Code": "O", "HL7 v2 Text": "Other", "HL7 v2 Code System": "HL70001",
            "HL7 FHIR Code": "other", "HL7 FHIR Display": "Other",
            "HL7 FHIR Code System": "http://hl7.org/fhir/administrative-gender"}},
        {"key": "X", "status": "added", "value": {
            "HL7 v2 Code": "X", "HL7 v2 Text": "Unknown", "HL7 v2 Code System": "HL70001",
            "HL7 FHIR Code": "unknown", "HL7 FHIR Display": "Unknown"}},
    ]


def test_a_removed_connection_lists_what_it_had(before: Content) -> None:
    after = _edited(before, lambda c: c["documents"].remove(
        _doc(c, "catalog/connections/lab-system.yaml")))
    (group,) = diff_contents(before, after).catalog
    assert (group.key, group.status, group.path_after) == ("lab-system", "removed", None)
    scope = next(change for change in group.settings if change.path == "data_scope")
    assert scope.as_dict() == {"path": "data_scope", "added": [],
                               "removed": sorted(_lab_system(before)["data_scope"])}


def test_message_files_by_size_not_content(before: Content) -> None:
    first, second = sorted(before["files"])[:2]
    size = len(base64.b64decode(before["files"][first]))

    def edit(content: Content) -> None:
        content["files"][first] = base64.b64encode(b"MSH|changed").decode()
        del content["files"][second]

    diff = diff_contents(before, _edited(before, edit))
    assert [file.as_dict() for file in diff.files] == [
        {"path": first, "status": "changed", "bytes": {"before": size, "after": 11}},
        {"path": second, "status": "removed",
         "bytes": {"before": len(base64.b64decode(before["files"][second])), "after": None}},
    ]
    assert render_diff(diff).splitlines()[0] == f"file {first}: changed ({size} -> 11 bytes)"


RESULTS = "rules/routes/results.yaml"
BROKEN = [
    pytest.param(lambda c: _rows(c)[1].pop("id"),
                 ["row rows[1] added", "row normal-results-to-ehr removed"],
                 id="row-without-id"),
    pytest.param(lambda c: _set(_doc(c, RESULTS), "data", ["not", "a", "table"]),
                 ["routes/results: removed", '(document) (absent) -> ["not", "a", "table"]'],
                 id="document-not-a-mapping"),
    pytest.param(lambda c: _set(_ehr_policy(c), "connections", "ehr-fhir"),
                 ["policy policies[0] added", "policy ehr-fhir / timeout, transport_error removed"],
                 id="policy-selection-not-a-list"),
    pytest.param(lambda c: c["documents"].append(PRIORITY_TABLE | {"path": "z.yaml"}),
                 ["table/priority#2: added (z.yaml)"], id="two-tables-with-one-id"),
]


@pytest.mark.parametrize(("edit", "keys"), BROKEN)
def test_a_broken_version_still_diffs(
    before: Content, edit: Callable[[Content], object], keys: list[str]
) -> None:
    after = _edited(before, edit)
    forward = diff_contents(before, after)
    rendered = render_diff(forward)
    assert all(key in rendered for key in keys), rendered
    assert diff_contents(after, before).as_dict() == _mirrored(forward.as_dict())


def test_an_unknown_document_kind_is_compared_whole(before: Content) -> None:
    watch = {"path": "rules/watches/late.yaml", "kind": "watches", "data": {"id": "late"}}
    diff = diff_contents(before, _edited(before, lambda c: c["documents"].append(watch)))
    assert render_diff(diff).splitlines() == [
        "watches/rules/watches/late.yaml: added (rules/watches/late.yaml)",
        "watches/rules/watches/late.yaml: id (absent) -> 'late'",
    ]


_SWAPPED = {"before": "after", "after": "before", "added": "removed", "removed": "added"}


def _mirrored(value: Any) -> Any:
    """The diff read the other way: added and removed, before and after, swapped (but
    not inside an added or removed entry's content, which is the same either way)."""
    if isinstance(value, list):
        return [_mirrored(item) for item in value]
    if not isinstance(value, dict):
        return value
    mirrored = {
        _SWAPPED.get(key, key): item if key == "value" else _mirrored(item)
        for key, item in value.items()
    }
    if mirrored.get("status") in ("added", "removed"):
        mirrored["status"] = _SWAPPED[mirrored["status"]]
    return mirrored
