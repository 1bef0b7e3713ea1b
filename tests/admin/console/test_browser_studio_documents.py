"""The rule studio's catalog-connection form in Debian's headless chromium, against the
whole of ``switchboard serve``: an analyst adds the cardiology pager's entry field by
field, and its completeness badge follows what is typed, before anything is saved.
Screenshots of the form, light and dark."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select

from engine.change_control import ChangeControl
from engine.security.users import UserStore
from tests.admin.console.live import LiveConsole, live_console
from tests.browser import screenshot
from tests.queue_rows import ROOT, as_

ENTRY = "catalog/connections/cardiology-pager.yaml"


@pytest.fixture
def live(sqlite_engine):
    with live_console(sqlite_engine, ROOT) as console:
        yield console


def typed(live: LiveConsole, name: str, text: str) -> None:
    live.driver.find_element(By.NAME, name).send_keys(text, Keys.TAB)


def badge(live: LiveConsole, words: str) -> None:
    live.wait(seen.text_to_be_present_in_element((By.ID, "completeness"), words))


def test_an_analyst_adds_a_catalog_entry_and_watches_it_become_complete(live):
    version = ChangeControl(live.engine).create_draft(as_("anna"), "Cardiology pager")["version"]
    live.sign_in("anna")
    live.open(f"/studio/{version}")
    live.wait(seen.element_to_be_clickable((By.ID, "add-connection"))).click()
    live.wait_for_text("A new catalog connection")
    typed(live, "id", "cardiology-pager")
    typed(live, "name", "Cardiology on-call pager")
    Select(live.driver.find_element(By.NAME, "direction")).select_by_value("outbound")
    Select(live.driver.find_element(By.NAME, "transport")).select_by_value("http")
    live.wait(seen.presence_of_element_located((By.NAME, "endpoint.url")))
    typed(live, "endpoint.url", "https://pager.cardiology.example/alerts")
    typed(live, "endpoint.auth_secret_env", "SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN")
    Select(live.driver.find_element(By.NAME, "format")).select_by_value("canonical-json")
    Select(live.driver.find_element(By.NAME, "classification")).select_by_value("phi")
    badge(live, "Still missing: business owner, technical owner, data scope, recovery procedure")

    find = live.driver.find_element(By.ID, "f-data_scope-find")
    find.send_keys("abnormal flags")
    flags = "input[name='data_scope'][value='results[*].abnormal_flags']"
    live.wait(seen.visibility_of_element_located((By.CSS_SELECTOR, flags)))
    assert not live.driver.find_element(
        By.CSS_SELECTOR, "input[name='data_scope'][value='patient.names']").is_displayed()
    find.send_keys(Keys.CONTROL, "a", Keys.DELETE)
    for section in ("results", "patient"):  # results is open still, from the search
        details = live.driver.find_element(
            By.XPATH, f"//details[summary[starts-with(normalize-space(), '{section}')]]")
        if details.get_attribute("open") is None:
            details.find_element(By.TAG_NAME, "summary").click()
    for path in ("results", "patient.names"):
        live.driver.find_element(
            By.CSS_SELECTOR, f"input[name='data_scope'][value='{path}']").click()
    typed(live, "recovery_procedure", "Retry the dead letters once the pager answers.")
    badge(live, "Still missing: business owner, technical owner.")
    typed(live, "business_owner.name", "Dr. Ada Osei")
    typed(live, "business_owner.email", "ada.osei@example.org")
    typed(live, "technical_owner.name", "Cardiology IT")
    typed(live, "technical_owner.email", "cardio-it@example.org")
    typed(live, "technical_owner.pager", "cardio-it-oncall")
    badge(live, "Complete")
    assert ChangeControl(live.engine).content(version)["documents"] == ChangeControl(
        live.engine).content(1)["documents"]  # nothing saved while typing

    live.driver.find_element(By.ID, "save-document").click()
    live.wait_for_text(f"Saved {ENTRY}.")
    content = ChangeControl(live.engine).content(version)
    entry = next(d["data"] for d in content["documents"] if d["path"] == ENTRY)
    assert entry["data_scope"] == ["patient.names", "results"]
    assert entry["endpoint"]["auth_secret_env"] == "SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN"
    live.both_themes("studio-catalog-entry", "anna")
    themes = UserStore(live.engine)
    for theme in ("light", "dark"):
        themes.set_theme("anna", theme)
        live.driver.refresh()
        live.wait(seen.presence_of_element_located(
            (By.CSS_SELECTOR, f'.console-page[data-theme="{theme}"]')))
        live.driver.execute_script(
            "document.getElementById('f-data_scope').scrollIntoView({block: 'start'})")
        screenshot(live.driver, f"studio-catalog-entry-scope-{theme}")
    themes.set_theme("anna", "light")

    live.open("/studio/")
    live.wait(seen.element_to_be_clickable((By.ID, "template-lab-result-routing"))).click()
    live.wait_for_text("Start a draft from the Lab-result routing template")
    live.both_themes("studio-template", "anna")
