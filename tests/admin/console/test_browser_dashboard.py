"""The dashboard in Debian's headless chromium: traffic sent over MLLP shows on its
tile and in its charts, refreshed without reloading the page."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from engine.security.users import UserStore
from tests.admin.console.live import live_console
from tests.browser import screenshot
from tests.queue_rows import ROOT


def test_traffic_shows_on_the_dashboard_without_a_reload(sqlite_engine):
    with live_console(sqlite_engine, ROOT) as live:
        live.sign_in("olive")
        live.open("/")
        live.wait_for_text("EHR outbound HL7 v2 feed", "#tiles")
        for number in range(3):
            assert live.serving.send(f"DASH{number}", f"PAT{number}") == "AA"
        # The tiles refresh themselves every 15 s (htmx): no reload here.
        live.wait(lambda driver: "3" in driver.find_element(
            By.CSS_SELECTOR, '#tiles a[href*="source=ehr-adt-feed"] .count').text)
        live.serving.process.flush_rollups()
        live.driver.find_element(By.ID, "chart-window").send_keys("Last day")
        live.wait_for_text("Last day", "#charts")
        live.wait_for_text("3 received", "#charts")
        screenshot(live.driver, "dashboard-light")
        UserStore(sqlite_engine).set_theme("olive", "dark")
        live.open("/")
        live.wait_for_text("EHR outbound HL7 v2 feed", "#tiles")
        screenshot(live.driver, "dashboard-dark")
