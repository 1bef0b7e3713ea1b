"""The rule studio's mapping editors over the test client, on SQLite: every shipped
mapping comes back exactly as it was when saved untouched; a plain entry is edited in
its cells and a nested one as YAML; errors land beside their row and nothing is saved;
a lookup table is a grid; an official concept map is read beside the draft's overrides,
which the engine then uses. Approvers and others' drafts read, never change. (The
routes are in test_studio_screen.py's ACCESS table.)"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from engine.rules.snapshot import from_content
from tests.admin.console.test_studio_screen import _posted_fields, draft, services_of

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = sorted(f"rules/mappings/{p.name}" for p in (ROOT / "rules/mappings").glob("*.yaml"))
PATIENT = "rules/mappings/patient.yaml"
OVERRIDES = "rules/mappings/tables/administrative-sex-overrides.yaml"


@pytest.fixture
def engine(sqlite_engine):
    return sqlite_engine


def stored(console, version: int, path: str) -> Any:
    documents = services_of(console).versions.content(version)["documents"]
    return next((d["data"] for d in documents if d["path"] == path), None)


def entry_key(page: str, target: str) -> str:
    found = re.search(rf'id="(entries-\d+)-target" name="[^"]+" value="{re.escape(target)}"',
                      page)
    assert found, target
    return found.group(1)


def error_of(page: str, key: str) -> str:
    found = re.search(rf'id="{key}-error">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


def test_every_shipped_mapping_saved_untouched_comes_back_exactly(console):
    version = draft(console)
    anna = console.as_("anna")
    for path in MAPPINGS:
        before = stored(console, version, path)
        url = f"/studio/{version}/mappings?path={path}"
        fields = _posted_fields(anna.text(url))
        saved = anna.post(url, {**fields, "action": "save"})
        assert saved.status_code == 302, (path, saved.text[:2000])
        assert stored(console, version, path) == before, path


def test_a_plain_entry_is_edited_in_its_cells_and_a_list_as_yaml(console):
    version = draft(console)
    anna = console.as_("anna")
    url = f"/studio/{version}/mappings?path={PATIENT}"
    page = anna.text(url)
    assert "Patient Identification: Administrative Sex" in page  # PID-8 in words
    assert '<optgroup label="Concept maps"><option value="administrative-sex"' in page
    assert "each PID-3[*] + PID-2[*] + PID-4[*] → assigning_authority, type, value" in page
    fields = _posted_fields(page)
    gender, names = entry_key(page, "patient.gender"), entry_key(page, "patient.names")
    fields[f"{gender}-default"] = ["unknown"]
    fields[f"{names}-spec"] = ["each: PID-5[*]\nfields:\n  family: '.1'\n  given: '.2'\n"]
    added = anna.post(url, {**fields, "action": "add-entry"})
    assert added.status_code == 200
    fields = _posted_fields(added.text)
    new = f"entries-{len([k for k in fields if k.endswith('-kind')]) - 1}"
    fields.update({f"{new}-target": ["patient.primary_care_provider.suffix"],
                   f"{new}-from": ["PD1-4.5"], f"{new}-transform": ["upper"]})
    maiden = entry_key(added.text, "patient.mothers_maiden_name")
    deleted = anna.post(url, {**fields, "action": f"delete:{maiden}"})
    assert '-target" value="patient.mothers_maiden_name"' not in deleted.text
    saved = anna.post(url, {**_posted_fields(deleted.text), "action": "save"})
    assert saved.status_code == 302, saved.text[saved.text.find("<main"):][:3000]
    data = stored(console, version, PATIENT)
    assert data["fields"]["patient.gender"] == {"from": "PID-8", "lookup": "administrative-sex",
                                                "default": "unknown"}
    assert data["fields"]["patient.names"] == {"each": "PID-5[*]",
                                               "fields": {"family": ".1", "given": ".2"}}
    assert data["fields"]["patient.primary_care_provider.suffix"] == {"from": "PD1-4.5",
                                                          "transform": "upper"}
    assert data["fields"]["patient.sex_code"] == "PID-8"  # a bare path stays one
    assert "patient.mothers_maiden_name" not in data["fields"]


def test_errors_are_shown_beside_their_row_and_nothing_is_saved(console):
    version = draft(console)
    anna = console.as_("anna")
    url = f"/studio/{version}/mappings?path={PATIENT}"
    before = stored(console, version, PATIENT)
    page = anna.text(url)
    fields = _posted_fields(page)
    birth, names = entry_key(page, "patient.birth_date"), entry_key(page, "patient.names")
    sex, race = entry_key(page, "patient.sex_code"), entry_key(page, "patient.race.code")
    fields[f"{birth}-from"] = ["PID-7x"]
    fields[f"{names}-spec"] = ["each: PID-5[*]\n  fields: [\n"]
    fields[f"{sex}-target"] = ["patient.gender"]
    fields[f"{race}-target"] = ["patient.shoe_size"]
    refused = anna.post(url, {**fields, "action": "save"})
    assert refused.status_code == 400 and "4 things to fix" in refused.text
    assert error_of(refused.text, f"{birth}-from").startswith("Not an HL7 path")
    assert error_of(refused.text, f"{names}-spec").startswith("Not readable YAML (line 2")
    gender = entry_key(page, "patient.gender")  # the later of the two is marked
    assert "fills 'patient.gender' already" in (error_of(refused.text, f"{sex}-target")
                                                 + error_of(refused.text, f"{gender}-target"))
    assert "'patient.shoe_size' is not a field" in error_of(refused.text, f"{race}-target")
    assert f'aria-describedby="{birth}-from-error"' in refused.text
    assert stored(console, version, PATIENT) == before
    # What only the schema sees is placed beside its row too.
    fields = _posted_fields(page)
    fields[f"{names}-spec"] = ["each: PID-5[*]\nfieldz: {family: '.1'}\n"]
    refused = anna.post(url, {**fields, "action": "save"})
    assert refused.status_code == 400 and "One thing to fix" in refused.text
    assert error_of(refused.text, names) or error_of(refused.text, f"{names}-spec")
    assert stored(console, version, PATIENT) == before


def test_a_new_lookup_table_is_a_grid_saved_as_typed(console):
    version = draft(console)
    anna = console.as_("anna")
    page = anna.text(f"/studio/{version}/tables?new=ward-codes")
    assert 'value="ward-codes"' in page and 'name="rows-0-code"' in page
    url = f"/studio/{version}/tables?path=rules/mappings/tables/ward-codes.yaml"
    grid = {"table-id": "ward-codes", "table-description": "Ward codes to names",
            "table-overrides": "", "rows-0-code": "4N", "rows-0-value": "North 4",
            "rows-0-type": "string"}
    added = anna.post(url, {**grid, "action": "add-row"})
    assert 'name="rows-1-code"' in added.text
    grid.update({"rows-1-code": "4N", "rows-1-value": "", "rows-1-type": "string"})
    refused = anna.post(url, {**grid, "action": "save"})
    assert refused.status_code == 400
    assert "has a row already" in error_of(refused.text, "rows-1-code")
    assert error_of(refused.text, "rows-1-value") == "Type the value the code becomes"
    assert stored(console, version, "rules/mappings/tables/ward-codes.yaml") is None
    grid.update({"rows-1-code": "ICU", "rows-1-value": "Intensive care"})
    assert anna.post(url, {**grid, "action": "save"}).status_code == 302
    assert stored(console, version, "rules/mappings/tables/ward-codes.yaml") == {
        "id": "ward-codes", "description": "Ward codes to names",
        "map": {"4N": "North 4", "ICU": "Intensive care"}}
    mapping = anna.text(f"/studio/{version}/mappings?path={PATIENT}")
    assert '<optgroup label="Lookup tables"><option value="ward-codes"' in mapping
    untouched = _posted_fields(anna.text(url))
    assert anna.post(url, {**untouched, "action": "save"}).status_code == 302
    assert stored(console, version, "rules/mappings/tables/ward-codes.yaml")["map"] == {
        "4N": "North 4", "ICU": "Intensive care"}


def test_a_concept_map_is_read_beside_the_overrides_the_engine_then_uses(console):
    version = draft(console)
    anna = console.as_("anna")
    url = f"/studio/{version}/concept-maps/administrative-sex"
    page = anna.text(url)
    assert "The official map" in page and '<td class="text-monospace">female</td>' in page
    assert 'name="rows-0-code"' not in page and "No rows." in page
    added = anna.post(url, {"table-id": "administrative-sex-overrides",
                            "table-description": "", "action": "add-row"})
    assert 'name="rows-0-code"' in added.text
    overrides = {"table-id": "administrative-sex-overrides",
                 "table-description": "Registration sends A for not yet known",
                 "rows-0-code": "A", "rows-0-value": "unknown", "rows-0-type": "string",
                 "table-overrides": "report-status"}  # posted, and ignored: the page says
    shown = anna.post(url, {**overrides, "action": "check"})
    assert '<td class="small align-middle" id="rows-0-replaces"><span class="text-monospace">' \
           'other</span></td>' in shown.text
    assert anna.post(url, {**overrides, "action": "save"}).status_code == 302
    assert stored(console, version, OVERRIDES) == {
        "id": "administrative-sex-overrides",
        "description": "Registration sends A for not yet known",
        "overrides": "administrative-sex", "map": {"A": "unknown"}}
    source = from_content(services_of(console).versions.content(version))
    assert source.tables["administrative-sex"].get("A") == "unknown"
    page = anna.text(url)
    assert 'class="studio-overridden"' in page and "overridden</span>" in page
    assert "1 code overridden" in anna.text(f"/studio/{version}")
    assert "only under a condition" in anna.text(
        f"/studio/{version}/concept-maps/report-status")
    searched = anna.text(url + "?q=ambiguous")
    assert '<td class="text-monospace">A</td>' in searched
    assert '<td class="text-monospace">F</td>' not in searched
    removed = anna.post(url, {"table-id": "administrative-sex-overrides",
                              "table-description": "", "action": "save"})
    assert removed.status_code == 302 and stored(console, version, OVERRIDES) is None
    assert anna.get(f"/studio/{version}/concept-maps/no-such-map").status_code == 404


def test_approvers_and_others_read_the_editors_and_a_forced_change_is_refused(console):
    version = draft(console, "anna")
    for name in ("abe", "adam"):
        if name == "adam":
            version = draft(console, "adam", "the admin's own")
        reader = console.as_("abe" if name == "abe" else "anna")
        for url in (f"/studio/{version}/mappings?path={PATIENT}",
                    f"/studio/{version}/concept-maps/administrative-sex",
                    f"/studio/{version}/tables?new=ward-codes"):
            page = reader.text(url)
            assert 'id="read-only"' in page and "<fieldset disabled>" in page, url
            assert 'id="save-' not in page, url
        forced = {"mapping-id": "patient", "entries-0-kind": "plain",
                  "entries-0-target": "patient.gender", "entries-0-from": "PID-8",
                  "action": "save"}
        for url, data in ((f"/studio/{version}/mappings?path={PATIENT}", forced),
                          (f"/studio/{version}/concept-maps/administrative-sex",
                           {"rows-0-code": "A", "rows-0-value": "x", "action": "save"}),
                          (f"/studio/{version}/tables?new=ward-codes",
                           {"table-id": "ward-codes", "action": "save"})):
            assert reader.post(url, data).status_code == 403, (name, url)
    assert stored(console, version, OVERRIDES) is None
    assert len(stored(console, version, PATIENT)["fields"]) > 1
