"""The message browser in Debian's headless chromium, against the whole of ``switchboard
serve`` on real sockets, on SQLite and PostgreSQL: messages sent over MLLP to an HTTP
destination that is down die in the outbox; an operator, by keyboard alone, starts at
the dashboard, follows the destination's failed count, opens the message, reads its
last error, retries the delivery once the destination is back and watches the page say
it was delivered. Then a bulk retry over several failed messages, with a reason, whose
progress bar reaches the end; and the screenshots, in both themes."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as seen
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rule_versions import bootstrap
from engine.security.users import UserStore
from engine.store.migrate import upgrade
from engine.store.models import Delivery, ExceptionItem, JournalEntry
from tests.admin.console.live import live_console
from tests.browser import screenshot
from tests.delivery_config import SINK, delivery_config
from tests.recording_sink import RecordingSink
from tests.waiting import wait_until

FAILED_COUNT = f'#tiles a[href="/messages/?destination={SINK}&delivery_status=failed"]'


@pytest.fixture
def sink():
    """The destination: down (nobody listens on its port) until a test starts it."""
    recording = RecordingSink()
    try:
        yield recording
    finally:
        recording.stop()


@pytest.fixture
def live(engine, sink, tmp_path):
    config = delivery_config(tmp_path / "config", sink.url)
    upgrade(engine)
    bootstrap(engine, config)  # published first: the console's fixture keeps it
    with live_console(engine, config) as console:
        yield console


def dead_letters(engine) -> dict[str, int]:
    """Each dead delivery's open exception item, by its message's control id."""
    with Session(engine) as session:
        return dict(session.execute(
            select(JournalEntry.control_id, ExceptionItem.id)
            .join(Delivery, Delivery.journal_id == JournalEntry.id)
            .join(ExceptionItem, ExceptionItem.delivery_id == Delivery.id)
            .where(Delivery.status == "dead", ExceptionItem.status == "open")).all())


def statuses(engine) -> dict[str, str]:
    with Session(engine) as session:
        return dict(session.execute(select(JournalEntry.control_id, Delivery.status).join(
            Delivery, Delivery.journal_id == JournalEntry.id)).all())


def send_while_down(live, control_ids: list[str]) -> None:
    for number, control_id in enumerate(control_ids):
        assert live.serving.send(control_id, f"MRN{number}") == "AA"
    wait_until(lambda: set(control_ids) <= set(dead_letters(live.engine)),
               what="the deliveries to die while the destination is down")


def tab_to(live, css: str, limit: int = 150):
    """Press Tab until ``css`` has the focus, as a keyboard user would."""
    target = live.driver.find_element(By.CSS_SELECTOR, css)
    for _ in range(limit):
        if live.driver.switch_to.active_element == target:
            return target
        ActionChains(live.driver).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached {css}")


def press(live, *keys: str) -> None:
    ActionChains(live.driver).send_keys(*keys).perform()


def test_an_operator_finds_a_failed_delivery_reads_why_and_retries_it(live, sink, engine):
    send_while_down(live, ["ORDER-1"])
    message_id = _message_id(engine, "ORDER-1")

    # By keyboard alone: from the dashboard's failed count to the message.
    live.sign_in("olive", keyboard=True)
    live.wait_for_text("Test sink", "#tiles")
    tab_to(live, FAILED_COUNT)
    press(live, Keys.ENTER)
    live.wait_for_text("Destination: test-sink")
    assert "Delivery status: failed" in live.driver.find_element(By.CSS_SELECTOR, "main").text
    tab_to(live, f'#results a[href^="/messages/{message_id}/"]')
    press(live, Keys.ENTER)
    live.wait_for_text("Deliveries", "#deliveries-heading")
    row = live.driver.find_element(By.CSS_SELECTOR, "#message-deliveries tr.delivery")
    assert "Failed: gave up" in row.text
    last_error = row.find_element(By.CSS_SELECTOR, ".last-error").text
    assert "refused" in last_error.lower(), last_error
    if engine.dialect.name == "sqlite":
        screenshot(live.driver, "message-light")

    sink.start()  # the destination is back
    tab_to(live, "button.retry-delivery")
    press(live, Keys.ENTER)
    live.wait_for_text("Retrying the delivery to test-sink")
    # The page follows the delivery by itself until it is delivered.
    live.wait_for_text("Delivered", "#message-deliveries")
    assert statuses(engine)["ORDER-1"] == "delivered"
    assert sink.keys() == [f"{message_id}:{SINK}"]

    if engine.dialect.name == "sqlite":
        _content_and_dark_screenshots(live, message_id)


def _content_and_dark_screenshots(live, message_id: str) -> None:
    """The parsed message, then the message's page and the search in the dark theme."""
    live.driver.find_element(By.ID, "view-tree").click()
    live.wait(seen.presence_of_element_located((By.CSS_SELECTOR, "#content-tree .hl7-tree")))
    family = live.driver.find_element(
        By.CSS_SELECTOR, '#content-tree .hl7-value[title^="PID-5.1 "]')
    assert family.get_attribute("title") == "PID-5.1 (Patient Name, Family Name)"
    live.driver.execute_script("arguments[0].scrollIntoView(true); window.scrollBy(0, -80);",
                               live.driver.find_element(By.ID, "content-heading"))
    screenshot(live.driver, "message-content-light")
    UserStore(live.engine).set_theme("olive", "dark")
    live.open(f"/messages/{message_id}/")
    live.wait_for_text("Delivered", "#message-deliveries")
    screenshot(live.driver, "message-dark")
    live.driver.find_element(By.ID, "view-tree").click()
    live.wait(seen.presence_of_element_located((By.CSS_SELECTOR, "#content-tree .hl7-tree")))
    live.driver.execute_script("arguments[0].scrollIntoView(true); window.scrollBy(0, -80);",
                               live.driver.find_element(By.ID, "content-heading"))
    screenshot(live.driver, "message-content-dark")


def test_a_bulk_retry_shows_its_progress_to_the_end(live, sink, engine):
    orders = [f"ORDER-{number}" for number in range(1, 5)]
    send_while_down(live, orders)
    live.sign_in("olive")
    live.open(f"/messages/?destination={SINK}&delivery_status=failed&type=ADT")
    live.wait_for_text("Results")
    checks = live.driver.find_elements(By.CSS_SELECTOR, '#results input[name="message"]')
    assert len(checks) == len(orders)
    if engine.dialect.name == "sqlite":
        screenshot(live.driver, "messages-light")
        UserStore(engine).set_theme("olive", "dark")
        live.driver.refresh()
        live.wait_for_text("Results")
        screenshot(live.driver, "messages-dark")
        UserStore(engine).set_theme("olive", "light")
        live.driver.refresh()
        live.wait_for_text("Results")
        checks = live.driver.find_elements(By.CSS_SELECTOR, '#results input[name="message"]')

    sink.start()
    for check in checks[:3]:
        check.click()
    live.driver.find_element(By.ID, "bulk-action").send_keys("Retry their failed deliveries")
    live.driver.find_element(By.ID, "bulk-reason").send_keys("test-sink is back up")
    live.driver.find_element(By.ID, "bulk-apply").click()
    live.wait_for_text("retry 3 failed deliveries")
    assert live.driver.find_element(By.ID, "confirm-reason").text == "test-sink is back up"
    live.driver.find_element(By.ID, "confirm").click()
    live.wait(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#bulk-progress[data-finished="yes"]')))
    bar = live.driver.find_element(By.CSS_SELECTOR, "#bulk-progress .progress-bar")
    assert bar.get_attribute("aria-valuenow") == "100"
    assert "Done: 3 of 3 retried." in live.driver.find_element(By.ID, "bulk-status").text
    wait_until(lambda: sorted(statuses(engine).values()) == [
        "dead", "delivered", "delivered", "delivered"], what="the three retried delivered")


def _message_id(engine, control_id: str) -> str:
    with Session(engine) as session:
        return session.scalars(select(JournalEntry.message_id).where(
            JournalEntry.control_id == control_id)).one()
