"""The users and roles screen in Debian's headless chromium, against the whole of
``switchboard serve`` configured (through SWITCHBOARD_* variables) to sign in through
the tests' private slapd: an admin maps a directory group to a role, by keyboard, and
that group's member finds their menu changed at their next sign-in."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.select import Select
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.security.sign_in import NO_ROLE
from engine.security.users import UserStore
from engine.store.models import AuditEvent
from tests.admin.console.directory import BREAK_GLASS, ldap_settings
from tests.admin.console.live import LiveConsole, live_console
from tests.browser import screenshot
from tests.ldap_server import PARKING, USERS
from tests.queue_rows import ROOT

TABS_AT_MOST = 80  # more than any console page has controls before its last one


@pytest.fixture
def live(sqlite_engine, ldap_server, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_LDAP", json.dumps(ldap_settings(ldap_server.url)))
    monkeypatch.setenv("SWITCHBOARD_LDAP_BREAK_GLASS_USER", BREAK_GLASS)
    with live_console(sqlite_engine, ROOT) as console:
        yield console


def press(live: LiveConsole, *keys: str) -> None:
    """Keys typed into whatever has the focus, as a person types them."""
    ActionChains(live.driver).send_keys(*keys).perform()


def tab_to(live: LiveConsole, element: WebElement) -> None:
    """Move the focus to ``element`` with the Tab key alone."""
    for _ in range(TABS_AT_MOST):
        if live.driver.switch_to.active_element == element:
            return
        press(live, Keys.TAB)
    raise AssertionError(f"Tab never reached {element.get_attribute('outerHTML')[:200]}")


def activate(live: LiveConsole, css: str) -> None:
    """Tab to the control ``css`` names and press Enter on it."""
    tab_to(live, live.wait(seen.element_to_be_clickable((By.CSS_SELECTOR, css))))
    press(live, Keys.ENTER)


def directory_sign_in(live: LiveConsole, name: str) -> None:
    """Sign in as a directory user of tests.ldap_server, typing and pressing Enter."""
    live.open("/sign-in/")
    field = live.wait(seen.element_to_be_clickable((By.ID, "username")))
    assert live.driver.switch_to.active_element == field
    press(live, name, Keys.TAB, USERS[name][0], Keys.ENTER)


def sign_out(live: LiveConsole) -> None:
    activate(live, "nav form button[type=submit]")
    live.wait(seen.presence_of_element_located((By.ID, "username")))


def menu(live: LiveConsole) -> list[str]:
    return [link.text.strip() for link in live.driver.find_elements(
        By.CSS_SELECTOR, "#console-navbar ul.mr-auto a.nav-link")]


def map_group(live: LiveConsole, group: str, role: str) -> None:
    """On the directory groups page: type the group, pick the role, map it."""
    tab_to(live, live.wait(seen.element_to_be_clickable((By.ID, "group"))))
    press(live, group, Keys.TAB)
    chooser = live.driver.switch_to.active_element
    assert chooser.get_attribute("id") == "role"
    press(live, role)  # a focused list picks the option typed
    assert Select(chooser).first_selected_option.text == role
    activate(live, "#add-mapping")
    live.wait_for_text(f"now get the role {role} when they next sign in")


def test_an_admin_maps_a_directory_group_to_a_role_and_that_user_s_menu_changes(live):
    directory_sign_in(live, "pete")
    live.wait_for_text(NO_ROLE, "#sign-in-refusal")

    live.sign_in(BREAK_GLASS, keyboard=True)
    with Session(live.engine) as session:
        assert session.scalar(select(AuditEvent.actor)
                              .where(AuditEvent.action == "sign_in.break_glass")) == BREAK_GLASS
    assert "Users" in menu(live)
    live.open("/users/")
    live.wait_for_text("Users and roles")
    screenshot(live.driver, "users-light")
    activate(live, "a[href='/users/ldap-groups']")
    live.wait_for_text("Groups mapped here")
    map_group(live, PARKING, "operator")
    screenshot(live.driver, "ldap-mapping-light")
    sign_out(live)

    directory_sign_in(live, "pete")
    live.wait(seen.presence_of_element_located((By.CSS_SELECTOR, "nav form button")))
    assert {"Messages", "Exceptions", "Tasks"} <= set(menu(live))
    sign_out(live)

    live.sign_in(BREAK_GLASS, keyboard=True)
    live.open("/users/ldap-groups")
    activate(live, f"button[aria-label='Remove: {PARKING} gives operator']")
    live.wait_for_text("no longer get the role operator")
    map_group(live, "parking-permits", "clinician")
    sign_out(live)

    directory_sign_in(live, "pete")
    live.wait(seen.presence_of_element_located((By.CSS_SELECTOR, "nav form button")))
    assert "Tasks" in menu(live)
    assert not {"Messages", "Exceptions", "Users"} & set(menu(live))
    sign_out(live)

    live.sign_in(BREAK_GLASS, keyboard=True)
    live.open("/users/user/pete")
    live.wait_for_text("the directory (LDAP)")
    assert "clinician" in live.driver.find_element(By.TAG_NAME, "main").text
    live.open("/users/user/olive")
    activate(live, "form[action$='/tokens'] button")
    live.wait(seen.presence_of_element_located((By.ID, "new-token")))
    screenshot(live.driver, "user-light")

    UserStore(live.engine).set_theme(BREAK_GLASS, "dark")
    live.open("/users/")
    live.wait_for_text("Users and roles")
    assert live.driver.find_element(By.CSS_SELECTOR, ".console-page").get_attribute(
        "data-theme") == "dark"
    screenshot(live.driver, "users-dark")
    live.open("/users/ldap-groups")
    live.wait_for_text("Groups mapped here")
    screenshot(live.driver, "ldap-mapping-dark")
