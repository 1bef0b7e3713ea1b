"""The exception queue in Debian's headless chromium, against the whole of
``switchboard serve`` on real sockets: an operator bulk-retries a whole group by
keyboard alone, with a reason, and watches its progress bar reach the end; the offer
to retry all of a connection's open items oldest first; an item's page and its edit
with the diff; both themes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as seen
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.exception_signature import signature_of
from engine.journal import now_utc
from engine.security.users import UserStore
from engine.store.models import AuditEvent, ExceptionItem
from tests.admin.console.live import live_console
from tests.browser import screenshot
from tests.engine.test_exception_groups import raised
from tests.queue_rows import ROOT, delivery, entry, exception_item, sample

GROUP_SIZE = 12
REFUSED = "delivery to clinic-north failed after 5 attempts: connection refused"
REASON = "North clinic's inbox is back after maintenance"


@pytest.fixture
def live(sqlite_engine):
    with live_console(sqlite_engine, ROOT) as console:
        yield console


def a_busy_queue(engine) -> int:
    """A dozen dead letters to clinic-north and a few other failures; the id of a
    failed ADT message that escalates to the admins in two hours."""
    for _ in range(GROUP_SIZE):
        journal_id, _ = entry(engine)
        exception_item(engine, journal_id, delivery(engine, journal_id))
    raised(engine, "delivery to lab-system failed after 8 attempts: HTTP 503 Service "
           "Unavailable", "lab-system", minute=20, escalate_in=240)
    raised(engine, "delivery to lab-system failed after 8 attempts: HTTP 503 Service "
           "Unavailable", "lab-system", minute=25, status="assigned", assignee="olive",
           escalate_in=240)
    raised(engine, "no route row matched this message: it goes nowhere", "ehr-fhir",
           "unrouted", minute=30)
    journal_id, _ = entry(engine, status="failed",
                          raw=sample("fhir-converter/ADT-A01-01.hl7"))
    item_id = exception_item(engine, journal_id, connection_id="ehr-adt-feed")
    with engine.begin() as connection:
        connection.execute(update(ExceptionItem).where(ExceptionItem.id == item_id).values(
            summary="PID-3 is empty: the patient cannot be identified; route to identity "
                    "review", escalate_at=now_utc() + timedelta(hours=2),
            escalate_to="admin", recovery_procedure=(
                "1. Look the patient up in the EHR by name and birth date.\n"
                "2. Put their MRN in PID-3 and reprocess the message.\n"
                "3. If the EHR has no such patient, call the registration desk.")))
    return item_id


def tab_to(live, css: str, limit: int = 120):
    """Press Tab until ``css`` has the focus, as a keyboard user would."""
    target = live.driver.find_element(By.CSS_SELECTOR, css)
    for _ in range(limit):
        if live.driver.switch_to.active_element == target:
            return target
        ActionChains(live.driver).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached {css}")


def press(live, *keys: str) -> None:
    ActionChains(live.driver).send_keys(*keys).perform()


def test_an_operator_bulk_retries_a_group_by_keyboard_and_sees_it_finish(live):
    item_id = a_busy_queue(live.engine)
    live.sign_in("olive", keyboard=True)
    live.open("/exceptions/")
    live.wait_for_text("Grouped by what went wrong")
    screenshot(live.driver, "exceptions-light")

    # Open the group of dead letters from its count, by keyboard.
    group = signature_of("clinic-north", "transport_error", REFUSED).key
    tab_to(live, f'#groups a[href="/exceptions/?signature={group}"]')
    press(live, Keys.ENTER)
    live.wait_for_text("Showing one group")
    tab_to(live, "#scope-selected")
    press(live, Keys.ARROW_DOWN)  # the radio group's other choice: the whole group
    assert live.driver.find_element(By.ID, "scope-group").is_selected()
    tab_to(live, "#bulk-action")
    press(live, Keys.ARROW_DOWN)
    assert live.driver.find_element(By.ID, "bulk-action").get_attribute("value") == "retry"
    tab_to(live, "#bulk-reason")
    press(live, REASON)
    tab_to(live, "#bulk-continue")
    press(live, Keys.ENTER)

    live.wait_for_text(f"Yes, retry {GROUP_SIZE} items")
    assert live.driver.find_element(By.ID, "confirm-reason").text == REASON
    tab_to(live, "#confirm")
    press(live, Keys.ENTER)
    live.wait(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#bulk-progress[data-finished="yes"]')))
    bar = live.driver.find_element(By.CSS_SELECTOR, "#bulk-progress .progress-bar")
    assert bar.get_attribute("aria-valuenow") == "100"
    assert f"Done: {GROUP_SIZE} of {GROUP_SIZE} retried." in live.driver.find_element(
        By.ID, "bulk-status").text
    live.both_themes("exception-bulk", "olive")
    with Session(live.engine) as session:
        retried = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "exception.retry")).all()
    assert len(retried) == GROUP_SIZE and {e.actor for e in retried} == {"olive"}

    # Filtered to one connection: retry all its open items, oldest first.
    live.open("/exceptions/?connection=lab-system")
    live.wait_for_text("Retry all 2 open for")
    live.driver.find_element(By.ID, "retry-all").click()
    live.wait_for_text("They are retried oldest first")
    live.both_themes("exception-retry-all", "olive")

    # An item's page, and the edit of its message with the diff.
    live.open(f"/exceptions/{item_id}/")
    live.wait_for_text("Recovery procedure")
    escalation = live.driver.find_element(By.ID, "escalation").text
    assert escalation.startswith("to admin, due in 1h"), escalation
    screenshot(live.driver, "exception-item-light")
    live.driver.find_element(By.ID, "edit").click()
    editor = live.wait(seen.element_to_be_clickable((By.ID, "body")))
    text = editor.get_attribute("value")
    pid = next(line for line in text.split("\n") if line.startswith("PID|"))
    fields = pid.split("|")
    fields[3] = "MRN-004711^^^RIVERSIDE^MR"
    editor.clear()
    editor.send_keys(text.replace(pid, "|".join(fields)))
    live.driver.find_element(By.ID, "show-diff").click()
    live.wait(seen.presence_of_element_located((By.CSS_SELECTOR, "#diff-lines .add")))
    assert "MRN-004711" in live.driver.find_element(By.CSS_SELECTOR, "#diff-lines .add").text
    live.driver.execute_script("arguments[0].scrollTop = 0; arguments[0].scrollLeft = 0;",
                               editor)
    live.both_themes("exception-edit", "olive")

    UserStore(live.engine).set_theme("olive", "dark")
    live.open("/exceptions/")
    live.wait_for_text("Grouped by what went wrong")
    screenshot(live.driver, "exceptions-dark")
    live.open(f"/exceptions/{item_id}/")
    live.wait_for_text("Recovery procedure")
    screenshot(live.driver, "exception-item-dark")
