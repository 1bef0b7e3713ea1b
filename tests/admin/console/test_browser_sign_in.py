"""Signing in and choosing a theme in Debian's headless chromium, against the whole of
``switchboard serve`` on real sockets."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.admin.console.live import live_console
from tests.browser import screenshot
from tests.queue_rows import ROOT


@pytest.fixture
def live(sqlite_engine):
    with live_console(sqlite_engine, ROOT) as console:
        yield console


def test_an_operator_signs_in_by_keyboard_and_picks_the_dark_theme(live):
    live.open("/")
    assert "/sign-in/" in live.driver.current_url
    screenshot(live.driver, "sign-in-light")
    live.sign_in("olive", keyboard=True)
    live.open("/account/")
    live.wait_for_text("Your API tokens")
    screenshot(live.driver, "account-light")
    live.driver.find_element(By.CSS_SELECTOR, "button[name=theme][value=dark]").click()
    live.wait_for_text("Your API tokens")
    assert live.driver.find_element(By.CSS_SELECTOR, ".console-page").get_attribute(
        "data-theme") == "dark"
    screenshot(live.driver, "account-dark")
    live.sign_out()
    screenshot(live.driver, "sign-in-dark-after-sign-out")
