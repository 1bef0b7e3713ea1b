"""The task inbox in Debian's headless chromium, against the whole of ``switchboard
serve`` with the shipped configuration on real sockets: abnormal results sent over MLLP
are held for a nurse's review; a clinician signs in, lands on her inbox (the overdue
review first), opens that review, claims and approves it with the keyboard alone, and
the held write-back is delivered; then, with the mouse in the dark theme, a rejection
without a reason is refused beside its field and with one cancels what was held."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as seen
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from engine.journal import now_utc
from engine.rule_versions import bootstrap
from engine.security.users import UserStore
from engine.store.migrate import upgrade
from engine.store.models import Delivery, JournalEntry, Task
from tests.admin.console.live import live_console
from tests.browser import screenshot
from tests.queue_rows import HELD_ROW, HELD_SAMPLE, REFERRAL_SAMPLE, ROOT, ingest, sample
from tests.recording_sink import RecordingSink
from tests.waiting import wait_until

# Three patients' glucose results, each abnormal (H), as the lab would send them.
PATIENTS = (("G1", "MRN-1001", "EVERYWOMAN^EVE^E"), ("G2", "MRN-1002", "OKAFOR^GRACE"),
            ("G3", "MRN-1003", "BECKER^TOM"))


def shipped_config(folder: Path, sink_url: str) -> Path:
    """The shipped rules/ and catalog/, every outbound system but the task queues moved
    to one HTTP sink on 127.0.0.1 (canonical JSON): the EHR, the clinics, the lab."""
    shutil.copytree(ROOT / "rules", folder / "rules")
    shutil.copytree(ROOT / "catalog", folder / "catalog")
    for path in (folder / "catalog" / "connections").glob("*.yaml"):
        entry = yaml.safe_load(path.read_text())
        if entry["direction"] == "outbound" and entry["transport"] != "task-queue":
            entry.update(transport="http", format="canonical-json",
                         endpoint={"url": sink_url, "method": "POST"})
            path.write_text(yaml.safe_dump(entry, sort_keys=False), encoding="utf-8")
    return folder


def result(control_id: str, mrn: str, name: str) -> bytes:
    raw = sample(HELD_SAMPLE)
    return (raw.replace(b"CNTRL-3456", control_id.encode())
            .replace(b"555-44-4444", mrn.encode())
            .replace(b"EVERYWOMAN^EVE^E", name.encode()))


def send(port: int, raw: bytes) -> None:
    with BlockingMllpClient("127.0.0.1", port, timeout=30) as client:
        assert parse(client.send(raw)).get("MSA-1") == "AA"


def reviews(engine) -> dict[str, int]:
    """The nurse-review tasks by their message's control id."""
    with Session(engine) as session:
        return dict(session.execute(select(JournalEntry.control_id, Task.id).join(
            Task, Task.journal_id == JournalEntry.id).where(Task.row_id == HELD_ROW)).all())


def write_back(engine, control_id: str) -> str | None:
    """The status of the EHR write-back the review held."""
    with Session(engine) as session:
        return session.scalar(select(Delivery.status).join(
            JournalEntry, JournalEntry.id == Delivery.journal_id).where(
            JournalEntry.control_id == control_id, Delivery.held_by_row == HELD_ROW))


@pytest.fixture
def sink():
    recording = RecordingSink()
    recording.start()
    try:
        yield recording
    finally:
        recording.stop()


@pytest.fixture
def live(sqlite_engine, sink, tmp_path):
    config = shipped_config(tmp_path / "config", sink.url)
    # Published first, so the console's fixture finds a version and keeps this one.
    upgrade(sqlite_engine)
    bootstrap(sqlite_engine, config)
    with live_console(sqlite_engine, config) as console:
        yield console


def tab_to(live, wanted, limit: int = 60) -> WebElement:
    """Press Tab until the focus is on the element ``wanted`` accepts."""
    for _ in range(limit):
        active = live.driver.switch_to.active_element
        if wanted(active):
            return active
        active.send_keys(Keys.TAB)
    raise AssertionError("Tab never reached the element")


def test_a_clinician_approves_an_abnormal_result_review_and_the_write_back_goes(live, sink):
    for control_id, mrn, name in PATIENTS:
        send(live.serving.mllp, result(control_id, mrn, name))
    ingest(live.engine, sample(REFERRAL_SAMPLE), "partner-referrals")
    found = wait_until(lambda: len(tasks := reviews(live.engine)) == 3 and tasks,
                       what="three abnormal-result reviews")
    late = found["G2"]
    with live.engine.begin() as connection:  # the review nobody took in time
        connection.execute(update(Task).where(Task.id == late).values(
            due_at=now_utc() - timedelta(minutes=45)))
    wait_until(lambda: write_back(live.engine, "G2") == "held", what="the held write-back")

    # By keyboard alone: sign in, land on the inbox, open the overdue review.
    live.sign_in("cora", keyboard=True)
    live.wait_for_text("Your tasks")
    assert live.driver.current_url.endswith("/tasks/")
    live.wait_for_text("Triage the referral")
    first = live.driver.find_element(By.CSS_SELECTOR, "table.task-inbox tbody tr")
    assert "overdue by 45m" in first.text and "MRN-1002" in first.text
    screenshot(live.driver, "tasks-light")
    tab_to(live, lambda el: el.get_attribute("href") == f"{live.base}/tasks/{late}"
           ).send_keys(Keys.ENTER)
    live.wait_for_text("182", "table.results .result-row-abnormal")
    abnormal = live.driver.find_element(By.CSS_SELECTOR, ".result-row-abnormal").text
    assert "High (H)" in abnormal and "70–105" in abnormal
    assert "OKAFOR, GRACE" in live.driver.find_element(By.ID, "patient-banner").text
    screenshot(live.driver, "task-light")
    # Past the results, straight to what to do.
    tab_to(live, lambda el: el.text == "Skip to what to do").send_keys(Keys.ENTER)
    tab_to(live, lambda el: el.get_attribute("id") == "claim", limit=3).send_keys(Keys.ENTER)
    live.wait_for_text("Claimed by you", ".task-status")
    assert "You claimed this task" in live.driver.switch_to.active_element.text
    tab_to(live, lambda el: el.get_attribute("id") == "approve").send_keys(Keys.SPACE)
    live.wait_for_text("Approved: the result is sent on.")
    assert "Approved:" in live.driver.switch_to.active_element.text  # said, and heard
    # The page follows the write-back on until it is delivered.
    live.wait_for_text("Delivered", "#task-holds")
    assert write_back(live.engine, "G2") == "delivered"
    assert [r.body["results"][0]["value"] for r in sink.received
            if r.key.endswith(":ehr-fhir") and r.body["message"]["control_id"] == "G2"] == [
        {"type": "SN", "number": 182}]

    # With the mouse, in the dark theme: a rejection needs a reason.
    with live.engine.begin() as connection:
        connection.execute(update(Task).where(Task.id == found["G1"]).values(
            due_at=now_utc() - timedelta(minutes=20)))
    UserStore(live.engine).set_theme("cora", "dark")
    live.open("/tasks/")
    live.wait_for_text("Your tasks")
    assert live.driver.find_element(By.CSS_SELECTOR, ".console-page").get_attribute(
        "data-theme") == "dark"
    live.wait_for_text("overdue by 20m", "table.task-inbox")
    screenshot(live.driver, "tasks-dark")
    live.driver.find_element(By.CSS_SELECTOR, f'a[href="/tasks/{found["G3"]}"]').click()
    live.wait_for_text("1 abnormal result", "#results-heading")
    screenshot(live.driver, "task-dark")
    live.driver.find_element(By.ID, "reject").click()
    live.wait(seen.visibility_of_element_located((By.ID, "reject-reason-error")))
    assert live.driver.switch_to.active_element.get_attribute("id") == "task-error"
    assert "a rejection needs a reason" in live.driver.find_element(
        By.ID, "reject-reason-error").text
    live.driver.find_element(By.ID, "reject-reason").send_keys("Haemolysed sample: redraw")
    live.driver.find_element(By.ID, "reject").click()
    live.wait_for_text("Cancelled: will not be sent", "#task-holds")
    assert write_back(live.engine, "G3") == "cancelled"
