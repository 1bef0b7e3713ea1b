"""The rule studio in Debian's headless chromium, against the whole of
``switchboard serve``: an analyst starts a draft and builds the critical potassium row
with the condition builder, by picking and typing (no YAML): "for one result", whose
code is potassium and whose flags or value are critical; saves it, and finds a schema
error in the YAML view on its line. Screenshots of each screen, light and dark."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select

from engine.change_control import ChangeControl
from engine.security.users import UserStore
from tests.admin.console.live import LiveConsole, live_console
from tests.admin.console.test_studio_screen import NEW_TABLE, POTASSIUM, POTASSIUM_SCOPED, RESULTS
from tests.browser import screenshot
from tests.queue_rows import ROOT

CRITICAL_POTASSIUM = "\n".join([
    "MSH|^~\\&|LAB|RIVERSIDE|EHR|RIVERSIDE|20261207083000||ORU^R01|LAB-7|P|2.5.1",
    "PID|1||MRN-7^^^RIVERSIDE^MR||TEST^PATIENT||19700101|F",
    "OBR|1|ORD-7|FIL-7|80048^BASIC METABOLIC PANEL^CPT",
    "OBX|1|NM|2951-2^Sodium^LN||139|mmol/L|135-145|N|||F",
    "OBX|2|NM|2823-3^Potassium^LN||6.9|mmol/L|3.5-5.1|HH|||F"])
SETTLED = "return !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"


@pytest.fixture
def live(sqlite_engine):
    with live_console(sqlite_engine, ROOT) as console:
        yield console


def settle(live: LiveConsole) -> None:
    """Wait for the editor's last htmx round trip to be swapped in."""
    live.wait(lambda driver: driver.execute_script(SETTLED))


def field(live: LiveConsole, element_id: str) -> WebElement:
    settle(live)
    return live.wait(seen.element_to_be_clickable((By.ID, element_id)))


def type_into(live: LiveConsole, element_id: str, text: str) -> None:
    """Type ``text`` and Tab away, as a person does; the editor redraws itself."""
    field(live, element_id).send_keys(text, Keys.TAB)
    settle(live)


def choose(live: LiveConsole, element_id: str, *values: str) -> None:
    picker = Select(field(live, element_id))
    for value in values:
        picker.select_by_value(value)
    settle(live)


def press(live: LiveConsole, css: str) -> None:
    settle(live)
    live.wait(seen.element_to_be_clickable((By.CSS_SELECTOR, css))).click()
    settle(live)


def leaf(live: LiveConsole, key: str, path: str, op: str, value: str) -> None:
    """Fill in one condition: a field of the result picked by its path, the test, the
    value."""
    type_into(live, f"{key}-path", path)
    choose(live, f"{key}-op", op)
    type_into(live, f"{key}-value", value)


def test_an_analyst_builds_the_potassium_row_without_yaml(live):
    live.sign_in("anna")
    live.open("/studio/")
    field(live, "summary").send_keys("Critical potassium to the bed board")
    live.driver.find_element(By.ID, "start-draft").click()
    live.wait_for_text("Draft 2: Critical potassium to the bed board")
    field(live, "new-table").send_keys("critical", Keys.ENTER)
    live.wait_for_text(NEW_TABLE)

    press(live, "#add-row")
    type_into(live, "rows-0-description", "Critical potassium to the bed board")
    assert field(live, "rows-0-id").get_attribute("value") == POTASSIUM["id"]
    press(live, "#rows-0-when-add-scope")
    choose(live, "rows-0-when-0-of", "results[*]")
    live.wait_for_text("One result must match all of these together", "#rows-0-when-0-explained")
    type_into(live, "rows-0-when-0-0-path", "code")
    live.wait_for_text("The test or observation code", "#rows-0-when-0-0-words")
    # A value typed and a button pressed at once: two requests, and neither is lost.
    field(live, "rows-0-when-0-0-value").send_keys("2823-3")
    live.driver.find_element(By.ID, "rows-0-when-0-add-group").click()
    settle(live)
    assert field(live, "rows-0-when-0-0-value").get_attribute("value") == "2823-3"
    choose(live, "rows-0-when-0-1-kind", "any")
    leaf(live, "rows-0-when-0-1-0", "abnormal_flags[*]", "in", "HH, LL")
    press(live, "#rows-0-when-0-1-add-condition")
    leaf(live, "rows-0-when-0-1-1", "value.number", "gt", "six")
    live.wait_for_text("'six' is not a number or a date", "#rows-0-when-0-1-1-value-error")
    field(live, "rows-0-when-0-1-1-value").clear()
    type_into(live, "rows-0-when-0-1-1-value", "6.5")
    choose(live, "rows-0-types", "ORU")
    choose(live, "rows-0-events", "R01")
    press(live, "label[for='rows-0-to-bed-board']")
    choose(live, "rows-0-checkpoint", "hold")
    choose(live, "rows-0-queue", "nurse-review")
    type_into(live, "rows-0-kind", "critical-potassium-review")
    type_into(live, "rows-0-due", "30m")
    type_into(live, "rows-0-task-description", "Call the ward before the bed board shows it")
    press(live, "#save-routes")
    live.wait_for_text(f"Saved {NEW_TABLE}.")
    content = ChangeControl(live.engine).content(2)
    stored = next(d for d in content["documents"] if d["path"] == NEW_TABLE)
    assert stored["data"] == {"id": "critical", "rows": [POTASSIUM_SCOPED]}
    _condition_in_both_themes(live)
    _panel_in_both_themes(live)

    live.open("/studio/2")
    live.wait_for_text("passed", "#gates-2")
    live.both_themes("studio-draft", "anna")
    live.open("/studio/")
    live.wait(seen.presence_of_element_located((By.CSS_SELECTOR, "#gates-2 .badge")))
    live.both_themes("studio-drafts", "anna")
    _yaml_error_in_both_themes(live)


def _condition_in_both_themes(live: LiveConsole) -> None:
    """The saved row's condition, "for one result", in view in each theme."""
    themes = UserStore(live.engine)
    for theme in ("light", "dark"):
        themes.set_theme("anna", theme)
        live.driver.refresh()
        live.wait(seen.presence_of_element_located(
            (By.CSS_SELECTOR, f'.console-page[data-theme="{theme}"]')))
        live.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})",
                                   field(live, "rows-0-when"))
        screenshot(live.driver, f"studio-route-editor-{theme}")
    themes.set_theme("anna", "light")


def _panel_in_both_themes(live: LiveConsole) -> None:
    """The test panel beside the editor: a critical potassium tried against the draft,
    the new row fired with what its conditions saw."""
    themes = UserStore(live.engine)
    for theme in ("light", "dark"):
        themes.set_theme("anna", theme)
        live.driver.refresh()
        live.wait(seen.presence_of_element_located(
            (By.CSS_SELECTOR, f'.console-page[data-theme="{theme}"]')))
        box = field(live, "test-panel-message-2")
        live.driver.execute_script("arguments[0].value = arguments[1]", box, CRITICAL_POTASSIUM)
        box.find_element(By.XPATH, "ancestor::form//button[@type='submit']").click()
        row = live.wait(seen.visibility_of_element_located(
            (By.CSS_SELECTOR, f'[data-row="{POTASSIUM["id"]}"]')))
        assert "fired" in row.text and "saw HH" in row.text.replace("saw\n", "saw ")
        live.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", row)
        screenshot(live.driver, f"studio-test-panel-{theme}")
    themes.set_theme("anna", "light")


def _yaml_error_in_both_themes(live: LiveConsole) -> None:
    """A list where the schema wants one, refused and shown on its line."""
    themes = UserStore(live.engine)
    for theme in ("light", "dark"):
        themes.set_theme("anna", theme)
        live.open(f"/studio/2/yaml?path={RESULTS}")
        text = field(live, "yaml-text").get_attribute("value")
        broken = text.replace("    to:\n      - ehr-fhir\n    when:\n      not:",
                              "    to: ehr-fhir\n    when:\n      not:", 1)
        live.driver.execute_script("arguments[0].value = arguments[1]",
                                   field(live, "yaml-text"), broken)
        live.driver.find_element(By.ID, "save-yaml").click()
        live.wait_for_text("Not saved", "#yaml-problems")
        live.driver.find_element(By.CSS_SELECTOR, "#yaml-problems a").click()
        live.driver.execute_script("window.scrollTo(0, 0)")  # the line is in view in its list
        screenshot(live.driver, f"studio-yaml-error-{theme}")
    themes.set_theme("anna", "light")
    assert "is not of type 'array'" in live.driver.find_element(
        By.CSS_SELECTOR, ".studio-line-problem").text
