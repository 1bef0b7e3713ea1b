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
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.security.sign_in import NO_ROLE
from engine.security.users import UserStore
from engine.store.models import AuditEvent
from tests.admin.console.directory import BREAK_GLASS, ldap_settings
from tests.admin.console.live import PASSWORD, LiveConsole, live_console
from tests.browser import screenshot
from tests.ldap_server import PARKING, USERS
from tests.queue_rows import ROOT

TABS_AT_MOST = 80  # more than any console page has controls before its last one
ROLES = ("analyst", "approver", "compliance", "operator", "admin", "clinician", "registrar")
CHOSEN = "a passphrase only adam knows"


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


def choose_role(live: LiveConsole, role: str) -> None:
    """With the focus on the checked role, move down the radio buttons with the arrow
    key, as a person does, until ``role`` is chosen."""
    wanted = live.driver.find_element(By.ID, f"role-{role}")
    for _ in range(len(ROLES)):
        if wanted.is_selected():
            return
        press(live, Keys.ARROW_DOWN)
    assert wanted.is_selected(), role


def map_group(live: LiveConsole, group: str, role: str) -> None:
    """On the directory groups page: type the group, pick the role, map it."""
    tab_to(live, live.wait(seen.element_to_be_clickable((By.ID, "group"))))
    press(live, group, Keys.TAB)
    chooser = live.driver.switch_to.active_element
    assert chooser.get_attribute("name") == "role"  # the checked role's radio button
    choose_role(live, role)
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
    live.both_themes("user", BREAK_GLASS)

    UserStore(live.engine).set_theme(BREAK_GLASS, "dark")
    live.open("/users/")
    live.wait_for_text("Users and roles")
    assert live.driver.find_element(By.CSS_SELECTOR, ".console-page").get_attribute(
        "data-theme") == "dark"
    screenshot(live.driver, "users-dark")
    live.open("/users/ldap-groups")
    live.wait_for_text("Groups mapped here")
    screenshot(live.driver, "ldap-mapping-dark")

    UserStore(live.engine).set_theme(BREAK_GLASS, "light")
    navbar_spans_the_window(live)
    add_a_user_and_ask_before_disabling(live)
    sign_out(live)
    a_password_an_admin_set_is_changed_at_sign_in(live)


def navbar_spans_the_window(live: LiveConsole) -> None:
    live.open("/users/")
    live.wait_for_text("Users and roles")
    left, width, window = live.driver.execute_script(
        "const box = document.querySelector('nav.navbar').getBoundingClientRect();"
        "return [box.left, box.width, document.documentElement.clientWidth];")
    assert (left, width) == (0, window)


def add_a_user_and_ask_before_disabling(live: LiveConsole) -> None:
    live.open("/users/add")
    live.wait_for_text("Also issue an API token")
    live.both_themes("user-add", BREAK_GLASS)  # the light one again below, filled in
    live.driver.find_element(By.ID, "name").send_keys("nina")
    live.driver.find_element(By.ID, "display_name").send_keys("Nina Patel, RN")
    # No role is chosen yet: Tab reaches the first, Space picks it, the arrows move on.
    tab_to(live, live.driver.find_element(By.ID, "role-analyst"))
    press(live, Keys.SPACE)
    choose_role(live, "clinician")
    assert not live.driver.find_element(By.ID, "token").is_selected()
    screenshot(live.driver, "user-add-light")
    activate(live, "form[action$='/users/add'] button[type=submit]")
    live.wait_for_text("Added nina (clinician).")
    assert not live.driver.find_elements(By.ID, "new-token")

    activate(live, "form[action$='/disable'] button")
    live.wait_for_text("Disable Nina Patel, RN?")
    confirm = live.driver.find_element(By.ID, "confirm")
    assert live.driver.switch_to.active_element == confirm  # ready for Enter, or Tab on
    screenshot(live.driver, "user-confirm-light")
    press(live, Keys.TAB, Keys.ENTER)  # Cancel
    live.wait_for_text("Issue a new token for nina")
    assert not UserStore(live.engine).user("nina").disabled

    live.open(f"/users/user/{BREAK_GLASS}")
    field = live.wait(seen.element_to_be_clickable((By.ID, "display_name")))
    field.send_keys("Adam Ortiz (IT)", Keys.ENTER)
    live.wait_for_text("adam is shown as Adam Ortiz (IT).")
    assert "Adam Ortiz (IT)" in live.driver.find_element(By.CSS_SELECTOR, "nav").text


def a_password_an_admin_set_is_changed_at_sign_in(live: LiveConsole) -> None:
    """As another admin would set it in the console: adam must choose his own."""
    UserStore(live.engine).set_password(BREAK_GLASS, PASSWORD, "test", change_required=True)
    live.open("/sign-in/?next=/users/")
    live.wait(seen.element_to_be_clickable((By.ID, "username")))
    press(live, BREAK_GLASS, Keys.TAB, PASSWORD, Keys.ENTER)
    live.wait_for_text("Choose your own password")
    assert live.driver.switch_to.active_element.get_attribute("id") == "password"
    live.both_themes("change-password", BREAK_GLASS)
    live.open("/users/")  # every other page sends back here
    live.wait_for_text("Choose your own password")
    press(live, CHOSEN, Keys.TAB, CHOSEN, Keys.ENTER)
    live.wait_for_text("Your new password is set.")
    assert "Adam Ortiz (IT)" in live.driver.find_element(By.CSS_SELECTOR, "nav").text
    live.open("/account/")
    live.wait_for_text("Change your password")
    live.both_themes("account-password", BREAK_GLASS)
