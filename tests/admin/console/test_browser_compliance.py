"""Compliance in Debian's headless chromium, against the whole of ``switchboard serve``
on real sockets: by keyboard alone, signs in, opens the integration catalog and one
connection's page, finds the CSV export, checks the audit chain (and, once an event is
changed behind its back, sees it listed), and is refused every page that shows message
content."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.security.users import UserStore
from engine.store.models import AuditEvent, JournalEntry
from tests.admin.console.live import live_console
from tests.browser import screenshot
from tests.queue_rows import ROOT, task
from tests.waiting import wait_until

# Pages that show message content (raw message, parsed tree, canonical record, the
# minimised payload per destination), or users' details, which compliance must be
# refused. "{message_id}" is replaced with a real message's id.
CONTENT_PAGES = [
    "/messages/{message_id}/content?view=raw",
    "/messages/{message_id}/content?view=tree",
    "/messages/{message_id}/content?view=canonical",
    "/messages/{message_id}/content?view=routing",
    "/messages/{message_id}/content?view=payload",
    "/users/",
]
REFUSED = "Not for your role"
PATIENT_MRN, PATIENT_FAMILY = "MRN-4711-SECRET", "DOE"
TASK_SECRET = "SECRET-NAME"  # what tests.queue_rows.task puts in a task's payload


@pytest.fixture
def live(sqlite_engine):
    with live_console(sqlite_engine, ROOT) as console:
        yield console


def test_compliance_reviews_the_catalog_and_is_refused_every_content_page(live):
    message_id = _one_message_through(live)
    with Session(live.engine) as session:
        journal_id = session.scalar(select(JournalEntry.id))
    task(live.engine, journal_id)

    live.sign_in("carl", keyboard=True)
    _follow_by_keyboard(live, "Catalog")
    live.wait_for_text("Integration catalog")
    live.wait_for_text("EHR outbound HL7 v2 feed")
    export = live.driver.find_element(By.ID, "catalog-export")
    assert export.get_attribute("href").endswith("/catalog/export.csv")
    assert export.text.strip() == "Export to CSV"
    _assert_no_content(live)
    screenshot(live.driver, "catalog-light")

    _follow_by_keyboard(live, "EHR outbound HL7 v2 feed")
    live.wait_for_text("Recovery procedure")
    live.wait_for_text("1 received", "#connection-health")
    _assert_no_content(live)
    live.both_themes("catalog-connection", "carl")

    # An entry whose classification says less than its data scope lets through.
    live.open("/catalog/?text=outreach")
    live.wait_for_text("Identifies patients", ".catalog-flag")
    live.both_themes("catalog-flagged", "carl")
    live.open("/catalog/patient-outreach")
    live.wait_for_text("To check", ".catalog-flags")
    _assert_no_content(live)

    _follow_by_keyboard(live, "Audit log")
    live.wait_for_text("Not checked yet", "#chain-verdict")
    _follow_by_keyboard(live, "Verify the chain now")
    live.wait_for_text("Intact", "#chain-verdict")
    live.wait_for_text("The audit chain is intact")
    screenshot(live.driver, "audit-light")

    for page in CONTENT_PAGES:
        live.open(page.format(message_id=message_id))
        live.wait(lambda driver: driver.find_elements(By.TAG_NAME, "h1"))
        heading = live.driver.find_element(By.TAG_NAME, "h1").text
        assert heading == REFUSED, (page, heading)
        _assert_no_content(live)
    live.open("/tasks/")
    live.wait_for_text("Tasks")
    assert TASK_SECRET not in live.driver.page_source

    UserStore(live.engine).set_theme("carl", "dark")
    live.open("/catalog/")
    live.wait_for_text("EHR outbound HL7 v2 feed")
    assert live.driver.find_element(By.CSS_SELECTOR, ".console-page").get_attribute(
        "data-theme") == "dark"
    screenshot(live.driver, "catalog-dark")
    live.open("/audit/")
    live.wait_for_text("Intact", "#chain-verdict")
    screenshot(live.driver, "audit-dark")

    # An event changed behind the log's back: the next check lists it in plain words.
    with Session(live.engine) as session, session.begin():
        changed = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id).offset(1)
                                 .limit(1))
        session.execute(update(AuditEvent).where(AuditEvent.id == changed)
                        .values(reason="changed behind the log's back"))
    UserStore(live.engine).set_theme("carl", "light")
    live.open("/audit/")
    _follow_by_keyboard(live, "Verify the chain now")
    live.wait_for_text("Broken", "#chain-verdict")
    live.wait_for_text("This event was changed after it was recorded.", "#failing-events")
    live.both_themes("audit-broken", "carl")


def _one_message_through(live) -> str:
    """An ordinary update over MLLP, journaled and routed; its message id."""
    assert live.serving.send("COMPLIANCE-1", PATIENT_MRN) == "AA"

    def routed() -> str | None:
        with Session(live.engine) as session:
            row = session.execute(select(JournalEntry.message_id, JournalEntry.status)).first()
        return row.message_id if row and row.status == "routed" else None

    return wait_until(routed, what="the update to be routed")


def _follow_by_keyboard(live, text: str, presses: int = 300) -> None:
    """Tab from the top of the page to the link or button reading ``text``, and press
    Enter: what someone without a mouse does."""
    body = live.driver.find_element(By.TAG_NAME, "body")
    live.driver.execute_script("document.activeElement && document.activeElement.blur()")
    body.send_keys(Keys.TAB)
    page = live.driver.find_element(By.TAG_NAME, "html")
    for _ in range(presses):
        focused = live.driver.switch_to.active_element
        if focused.text.strip().startswith(text):
            focused.send_keys(Keys.ENTER)
            live.wait(lambda driver: _gone(page))
            return
        focused.send_keys(Keys.TAB)
    raise AssertionError(f"no link or button reading {text!r} within {presses} tab presses")


def _gone(element) -> bool:
    """The page ``element`` belongs to has been replaced by the next one."""
    try:
        element.tag_name  # noqa: B018
    except StaleElementReferenceException:
        return True
    return False


def _assert_no_content(live) -> None:
    source = live.driver.page_source
    for secret in (PATIENT_MRN, f"{PATIENT_FAMILY}^JANE", "JANE", TASK_SECRET):
        assert secret not in source, secret
