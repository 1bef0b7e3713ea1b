"""The mapping editors in Debian's headless chromium, against the whole of ``switchboard
serve``: an analyst overrides one code of an official concept map beside the official
rows, then reads a mapping as a table of canonical fields. Screenshots, light and dark."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen

from engine.change_control import ChangeControl
from tests.admin.console.live import live_console
from tests.queue_rows import ROOT, as_


@pytest.fixture
def live(sqlite_engine):
    with live_console(sqlite_engine, ROOT) as console:
        yield console


def test_an_analyst_overrides_a_concept_map_code_and_reads_a_mapping(live):
    versions = ChangeControl(live.engine)
    version = versions.create_draft(as_("anna"), "A is unknown here")["version"]
    live.sign_in("anna")
    live.open(f"/studio/{version}")
    live.driver.find_element(
        By.CSS_SELECTOR, 'a[href$="/concept-maps/administrative-sex"]').click()
    live.wait_for_text("The official map")
    live.driver.find_element(By.ID, "add-row").click()
    live.wait(seen.element_to_be_clickable((By.ID, "rows-0-code"))).send_keys("A")
    live.driver.find_element(By.ID, "rows-0-value").send_keys("unknown")
    live.driver.find_element(By.ID, "table-description").send_keys(
        "Our registration desk sends A while the sex is not yet known")
    live.driver.find_element(By.ID, "save-overrides").click()
    live.wait_for_text("Saved rules/mappings/tables/administrative-sex-overrides.yaml")
    assert "overridden" in live.driver.find_element(By.ID, "official-rows").text
    live.both_themes("studio-concept-map-overrides", "anna")

    live.open(f"/studio/{version}/mappings?path=rules/mappings/encounter.yaml")
    live.wait_for_text("Canonical field", "#mapping-entries")
    assert live.driver.find_element(By.ID, "entries-0-target").get_attribute("value")
    live.both_themes("studio-mapping-editor", "anna")
