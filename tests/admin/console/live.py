"""The whole of ``switchboard serve`` (engine and web, console included) in this test
process on real sockets, and a Debian chromium signed in to its console, for the
browser tests. Waits are on what the page shows (WebDriverWait), never on time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine

from engine.security.users import UserStore
from tests.browser import chromium, screenshot
from tests.in_process_serve import Serving, serving
from tests.queue_rows import prepared
from tests.waiting import LIMIT

PASSWORD = "correct horse battery staple"


@dataclass
class LiveConsole:
    serving: Serving
    driver: WebDriver
    engine: Engine
    tokens: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.serving.web}"

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def wait(self, condition: Any, limit: float = LIMIT) -> Any:
        return WebDriverWait(self.driver, limit).until(condition)

    def wait_for_text(self, text: str, css: str = "body") -> None:
        self.wait(seen.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    def sign_in(self, name: str, keyboard: bool = False) -> None:
        """Sign in through the form as one of tests.queue_rows.PEOPLE; with
        ``keyboard``, by typing and Tab/Enter alone."""
        UserStore(self.engine).set_password(name, PASSWORD, "test")
        self.open("/sign-in/")
        field = self.wait(seen.element_to_be_clickable((By.ID, "username")))
        if keyboard:
            active = self.driver.switch_to.active_element
            assert active.get_attribute("id") == "username"  # focused on arrival
            active.send_keys(name, Keys.TAB)
            self.driver.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
        else:
            field.send_keys(name)
            self.driver.find_element(By.ID, "password").send_keys(PASSWORD)
            self.driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        self.wait(seen.presence_of_element_located((By.CSS_SELECTOR, "nav form button")))

    def both_themes(self, name: str, user: str) -> None:
        """Screenshot this page as docs/screenshots/<name>-light.png, then, with ``user``
        (signed in now) in the dark theme, opened again as <name>-dark.png; the light
        theme back after. Only for a page a GET opens again as it is."""
        screenshot(self.driver, f"{name}-light")
        themes = UserStore(self.engine)
        themes.set_theme(user, "dark")
        try:
            self.driver.refresh()
            self.wait(seen.presence_of_element_located(
                (By.CSS_SELECTOR, '.console-page[data-theme="dark"]')))
            screenshot(self.driver, f"{name}-dark")
        finally:
            themes.set_theme(user, "light")

    def sign_out(self) -> None:
        self.driver.find_element(By.CSS_SELECTOR, "nav form button").click()
        self.wait(seen.presence_of_element_located((By.ID, "username")))


@contextmanager
def live_console(engine: Engine, config: Path, **settings: Any) -> Iterator[LiveConsole]:
    """Serve ``config`` over ``engine``'s store with one user per role, and a browser."""
    tokens = prepared(engine)
    url = engine.url.render_as_string(hide_password=False)
    with serving(config, url, **settings) as served, chromium() as driver:
        yield LiveConsole(served, driver, engine, tokens)
