"""A rule change from the browser to the engine, in Debian's headless chromium against
the whole of ``switchboard serve``: an analyst adds a new destination in the catalog
form and builds a row that pages it for a critical potassium, tries it in the test
panel and keeps it as a rule test, submits it; an approver previews, approves and
publishes it; a potassium sent over MLLP is then held for review under that row, and
the pager gets it only once a clinician approves. A rejected version is fixed in a new
draft; a published one is rolled back from the history and messages go by the earlier
rules again, on SQLite and on PostgreSQL."""

from __future__ import annotations

import copy
import json
import urllib.request
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.change_control import ChangeControl
from engine.impact_preview import PreviewRunner
from engine.rule_versions import bootstrap
from engine.rules.rule_tests import SAVED_TESTS
from engine.store.migrate import upgrade
from engine.store.models import Delivery, JournalEntry, Task
from tests.admin.console.live import LiveConsole, live_console
from tests.admin.console.test_browser_studio import (
    choose,
    field,
    leaf,
    press,
    settle,
    type_into,
)
from tests.admin.console.test_browser_tasks import send, shipped_config
from tests.queue_rows import HELD_SAMPLE, ROOT, as_, sample
from tests.recording_sink import RecordingSink
from tests.rule_versions import in_review
from tests.waiting import wait_until

PAGER = "cardiology-pager"
PAGER_TOKEN_ENV = "SWITCHBOARD_CARDIOLOGY_PAGER_TOKEN"
PAGER_TOKEN = "Bearer cardiology-pager-test-token"
ROW = "critical-potassium-pages-cardiology"
TABLE = "rules/routes/critical.yaml"
CASE = "potassium-hh-pages-cardiology"
PAGER_ENTRY = f"catalog/connections/{PAGER}.yaml"


def potassium(control_id: str) -> bytes:
    """The corpus's abnormal glucose result turned into a critical potassium (HH)."""
    segments = sample(HELD_SAMPLE).decode().splitlines()
    segments = [s.replace("15545^GLUCOSE", "2823-3^POTASSIUM^LN") for s in segments
                if not s.startswith(("OBX", "NTE"))]
    segments.insert(3, "OBX|1|NM|2823-3^Potassium^LN||6.9|mmol/L|3.5-5.1|HH|||F")
    return "\r".join(segments).replace("CNTRL-3456", control_id).encode()


def api(live: LiveConsole, user: str, path: str, body: Any = None,
        method: str = "GET") -> Any:
    """An answer of the running serve's REST API, as ``user`` with their token."""
    request = urllib.request.Request(
        live.base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {live.tokens[user]}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def running(live: LiveConsole, version: int) -> None:
    wait_until(lambda: live.serving.readiness()[1]["rule_set_version"] == version,
               what=f"the engine to run version {version}")


def css(live: LiveConsole, selector: str):
    return live.driver.find_element(By.CSS_SELECTOR, selector)


def switch_user(live: LiveConsole, name: str) -> None:
    live.sign_out()
    live.sign_in(name)


# ---- 1. from a draft to a delivery ---------------------------------------------------


@pytest.fixture
def sinks():
    """Two HTTP sinks on 127.0.0.1: every shipped destination's, and the pager's."""
    found = RecordingSink(), RecordingSink()
    for sink in found:
        sink.start()
    try:
        yield found
    finally:
        for sink in found:
            sink.stop()


@pytest.fixture
def shipped(sqlite_engine, sinks, tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_PREVIEW_RUNNER", "false")  # the test runs it
    monkeypatch.setenv(PAGER_TOKEN_ENV, PAGER_TOKEN)
    config = shipped_config(tmp_path / "config", sinks[0].url)
    upgrade(sqlite_engine)
    bootstrap(sqlite_engine, config)
    with live_console(sqlite_engine, config) as console:
        yield console


def test_a_new_row_and_destination_go_from_a_draft_to_a_delivery_after_review(shipped, sinks):
    live, (everyone, pager) = shipped, sinks
    live.sign_in("anna")
    live.open("/studio/")
    field(live, "summary").send_keys("Critical potassium pages cardiology")
    css(live, "#start-draft").click()
    live.wait_for_text("Draft 2: Critical potassium pages cardiology")
    _add_the_pager(live, pager.url)
    _build_the_row(live)
    _try_and_keep_as_a_rule_test(live)
    live.open("/studio/2")
    press(live, "#submit-draft")
    live.wait_for_text("Version 2 is submitted for review")
    live.open("/changes/2")
    live.wait_for_text("An approver decides on this version", "#read-only")
    assert not live.driver.find_elements(By.ID, "approve")

    switch_user(live, "abe")
    _review_and_publish(live, 2)
    running(live, 2)

    send(live.serving.mllp, potassium("K-1"))
    task = wait_until(lambda: _task_of(live, "K-1"), what="the new row's review task")
    wait_until(lambda: any(r.key.endswith(":clinic-north") for r in everyone.received),
               what="the clinic's copy, which no review holds")
    assert _delivery(live, "K-1", PAGER) == ("held", ROW)
    assert pager.received == []

    switch_user(live, "cora")
    live.open(f"/tasks/{task}")
    live.wait_for_text("To Cardiology on-call pager")
    assert ROW in css(live, "main").get_attribute("textContent")  # its technical details
    press(live, "#approve")
    wait_until(lambda: pager.received, what="the page to cardiology")
    [page] = pager.received
    assert page.authorization == PAGER_TOKEN
    assert page.body["message"]["control_id"] == "K-1"
    assert [r["abnormal_flags"] for r in page.body["results"]] == [["HH"]]
    assert _delivery(live, "K-1", PAGER)[0] == "delivered"


def _add_the_pager(live: LiveConsole, url: str) -> None:
    """The new destination's catalog entry, in the studio's form: the pager's URL (the
    test's sink) and the variable its secret is in, never the secret."""
    live.open("/studio/2")
    press(live, "#add-connection")
    live.wait_for_text("A new catalog connection")
    for name, text in (("id", PAGER), ("name", "Cardiology on-call pager"),
                       ("description", "Critical potassium pages the cardiologist on call.")):
        typed(live, name, text)
    picked(live, "direction", "outbound")
    picked(live, "transport", "http")
    live.wait(seen.presence_of_element_located((By.NAME, "endpoint.url")))
    typed(live, "endpoint.url", url)
    typed(live, "endpoint.auth_secret_env", PAGER_TOKEN_ENV)
    picked(live, "format", "canonical-json")
    picked(live, "classification", "phi")
    for section, paths in (("message", ("message",)), ("patient", ("patient.names",)),
                           ("results", ("results",))):
        details = live.driver.find_element(
            By.XPATH, f"//details[summary[starts-with(normalize-space(), '{section}')]]")
        if details.get_attribute("open") is None:
            details.find_element(By.TAG_NAME, "summary").click()
        for path in paths:
            css(live, f"input[name='data_scope'][value='{path}']").click()
    typed(live, "recovery_procedure", "Phone the cardiologist on call; the rota is on the "
                                      "intranet.")
    for name, text in (("business_owner.name", "Cardiology"),
                       ("business_owner.email", "cardiology@riverside.example"),
                       ("technical_owner.name", "Clinical systems"),
                       ("technical_owner.email", "clinsys@riverside.example"),
                       ("technical_owner.phone", "+1 555 0100 ext 4100")):
        typed(live, name, text)
    live.wait_for_text("Complete", "#completeness")
    press(live, "#save-document")
    live.wait_for_text(f"Saved {PAGER_ENTRY}.")
    assert live.driver.current_url.endswith(f"/studio/2/document?path={PAGER_ENTRY}")
    live.open("/studio/2")


def typed(live: LiveConsole, name: str, text: str) -> None:
    css(live, f"main [name='{name}']").send_keys(text, Keys.TAB)
    settle(live)


def picked(live: LiveConsole, name: str, value: str) -> None:
    Select(css(live, f"main [name='{name}']")).select_by_value(value)
    settle(live)


def _build_the_row(live: LiveConsole) -> None:
    field(live, "new-table").send_keys("critical\n")
    live.wait_for_text(TABLE)
    press(live, "#add-row")
    type_into(live, "rows-0-description", "Critical potassium pages cardiology")
    assert field(live, "rows-0-id").get_attribute("value") == ROW
    press(live, "#rows-0-when-add-scope")
    choose(live, "rows-0-when-0-of", "results[*]")
    live.wait_for_text("One result must match all of these together", "#rows-0-when-0-explained")
    leaf(live, "rows-0-when-0-0", "code", "eq", "2823-3")
    press(live, "#rows-0-when-0-add-condition")
    leaf(live, "rows-0-when-0-1", "abnormal_flags[*]", "in", "HH, LL")
    choose(live, "rows-0-types", "ORU")
    choose(live, "rows-0-events", "R01")
    press(live, f"label[for='rows-0-to-{PAGER}']")
    choose(live, "rows-0-checkpoint", "hold")
    choose(live, "rows-0-queue", "nurse-review")
    type_into(live, "rows-0-kind", "critical-potassium-page")
    type_into(live, "rows-0-due", "15m")
    type_into(live, "rows-0-task-description", "Confirm before cardiology is paged")
    press(live, "#save-routes")
    live.wait_for_text(f"Saved {TABLE}.")
    [row] = _document(ChangeControl(live.engine).content(2), TABLE)["rows"]
    assert row["when"] == {"some": {"of": "results[*]", "where": {"all": [
        {"field": "code", "op": "eq", "value": "2823-3"},
        {"field": "abnormal_flags[*]", "op": "in", "value": ["HH", "LL"]}]}}}


def _try_and_keep_as_a_rule_test(live: LiveConsole) -> None:
    """The corpus potassium in the route editor's test panel: the row fires, each
    condition of the one result with what it saw; then kept in the draft as a rule
    test."""
    message = potassium("K-0").decode().replace("\r", "\n")
    box = field(live, "test-panel-message-2")
    live.driver.execute_script("arguments[0].value = arguments[1]", box, message)
    press(live, "#test-panel-2 button[type=submit]")
    row = f'#test-panel-2 .trial-row[data-row="{ROW}"]'
    live.wait_for_text("fired", row)
    said = css(live, row).text
    assert f"→ {PAGER}; hold task for nurse-review" in said
    assert "saw 2823-3" in said and "saw HH" in said, said
    panel = css(live, "#test-panel-2").text
    assert f"Sent to {PAGER}, held until the task of row {ROW} is approved" in panel
    assert "due 15 min after it is made" in panel
    field(live, "test-panel-case-2").send_keys(CASE)
    press(live, "#test-panel-2 fieldset button")
    live.wait_for_text(f"Saved as the rule test {CASE}", "#test-panel-2")
    [case] = _document(ChangeControl(live.engine).content(2), SAVED_TESTS)["cases"]
    assert case["id"] == CASE and sorted(case["expect"]["destinations"]) == [
        "analytics-warehouse", PAGER, "clinic-north", "ehr-fhir"], case


def _review_and_publish(live: LiveConsole, version: int) -> None:
    """The approver reads the diff, runs the impact preview (its progress, then its
    counts), approves and publishes."""
    live.open("/changes/")
    css(live, f'#review-queue a[href="/changes/{version}"]').click()
    live.wait_for_text(f"Connection {PAGER}", "#what-changed")
    changed = css(live, "#what-changed").text
    assert f"row {ROW}" in changed and "to:\n- cardiology-pager" in changed, changed
    press(live, "#start-preview")
    live.wait(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#impact-preview[data-status="queued"] .progress-bar-animated')))
    PreviewRunner(live.engine).run_pending()
    live.wait(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#impact-preview[data-finished="yes"] #preview-counts')))
    counts = css(live, "#impact-preview").text
    assert "1 treated differently" in counts
    assert f"{PAGER} 0 1 1 0 0" in counts  # before, after, added, removed, changed
    live.open(f"/changes/{version}")
    press(live, "#approve")
    live.wait(seen.element_to_be_clickable((By.ID, "publish"))).click()
    live.wait_for_text("the engines switch to it now")


def _task_of(live: LiveConsole, control_id: str) -> int | None:
    with Session(live.engine) as session:
        return session.scalar(select(Task.id).join(
            JournalEntry, JournalEntry.id == Task.journal_id).where(
            JournalEntry.control_id == control_id, Task.row_id == ROW))


def _delivery(live: LiveConsole, control_id: str, destination: str) -> tuple[str, str | None]:
    with Session(live.engine) as session:
        return tuple(session.execute(select(Delivery.status, Delivery.held_by_row).join(
            JournalEntry, JournalEntry.id == Delivery.journal_id).where(
            JournalEntry.control_id == control_id,
            Delivery.destination == destination)).one())



# ---- 2. a rejection, fixed in a new draft ----------------------------------------------


@pytest.fixture
def live(sqlite_engine):
    with live_console(sqlite_engine, ROOT) as console:
        yield console


def test_a_rejected_version_is_fixed_in_a_new_draft_that_starts_from_it(live):
    version = in_review(live.engine)
    reason = "Say which dashboards use the feed, and who owns them."
    live.sign_in("abe")
    live.open(f"/changes/{version}")
    field(live, "reject-reason").send_keys(reason)
    press(live, "#reject")
    live.wait_for_text(f"Version {version} is rejected; its author sees your reason.")

    switch_user(live, "anna")
    live.open("/changes/history")
    css(live, f'#version-{version} a[href="/changes/{version}"]').click()
    live.wait_for_text(reason, "#rejection-reason")
    assert "Rejected by abe" in css(live, "#rejection").text
    press(live, "#fix")
    live.wait_for_text(f"started from version {version}", "#version-facts")
    fix = int(live.driver.current_url.rsplit("/", 1)[1])
    assert fix > version
    assert ChangeControl(live.engine).show(fix)["parent"] == version
    live.wait_for_text(f"Draft {fix}: Fix of version {version} after review")


# ---- 3 and 4. published, then rolled back: on SQLite and PostgreSQL ---------------------

REGISTRATION = "rules/routes/registration.yaml"
REGISTRATION_TESTS = "rules/tests/registration.yaml"
UPDATES_ROW = "patient-updates-to-bed-board"


@pytest.fixture
def either(engine):
    with live_console(engine, ROOT) as console:
        yield console


def test_an_approver_publishes_then_rolls_back_and_messages_follow_each_version(either):
    live = either
    version = _bed_board_updates_in_review(live.engine)
    live.sign_in("abe")
    live.open(f"/changes/{version}")
    press(live, "#approve")
    live.wait(seen.element_to_be_clickable((By.ID, "publish"))).click()
    live.wait_for_text("the engines switch to it now")
    running(live, version)
    assert _routed(live, "U-1", version) == ["analytics-warehouse", "bed-board", "lab-system"]

    live.open("/changes/history")
    press(live, "#version-1 details.rollback summary")
    field(live, "rollback-reason-1").send_keys("The bed board cannot take updates yet.")
    press(live, "#rollback-1")
    restored = version + 1
    live.wait_for_text(f"Version {restored} is published: the rules of version 1 again.")
    running(live, restored)
    live.open("/changes/history")
    live.wait_for_text(f"pipeline version {restored}", "#running-versions")
    assert _routed(live, "U-2", restored) == ["analytics-warehouse", "lab-system"]


def _bed_board_updates_in_review(engine) -> int:
    """Anna's version in review, its preview run: patient updates (A08) go to the bed
    board as well, and the rule test of an update says so."""
    versions = ChangeControl(engine)
    number = int(versions.create_draft(as_("anna"), "Updates refresh the bed board")["version"])
    content = versions.content(number)
    routes = copy.deepcopy(_document(content, REGISTRATION))
    routes["rows"].append({"id": UPDATES_ROW, "match": {"type": "ADT", "event": "A08"},
                           "description": "Demographic updates refresh the bed board.",
                           "to": ["bed-board"]})
    versions.put_document(number, as_("anna"), REGISTRATION, "routes", routes)
    tests = copy.deepcopy(_document(content, REGISTRATION_TESTS))
    case = next(c for c in tests["cases"] if c["id"] == "demographic-update-reaches-lab")
    case["expect"]["destinations"] = ["lab-system", "bed-board", "analytics-warehouse"]
    versions.put_document(number, as_("anna"), REGISTRATION_TESTS, "tests", tests)
    versions.submit(number, as_("anna"))
    versions.request_preview(number, as_("anna"), {"limit": 50})
    PreviewRunner(engine).run_pending()
    return number


def _document(content: dict[str, Any], path: str) -> dict[str, Any]:
    return next(d["data"] for d in content["documents"] if d["path"] == path)


def _routed(live: LiveConsole, control_id: str, version: int | None = None) -> list[str]:
    """An ADT^A08 sent over MLLP: the destinations it was routed to, sorted, read from
    the message log API; with ``version``, routed by that version."""
    assert live.serving.send(control_id, f"MRN-{control_id}") == "AA"
    found = wait_until(lambda: api(live, "olive", f"/api/messages?control_id={control_id}")
                       ["items"], what=f"message {control_id} in the log")
    message_id = found[0]["message_id"]
    # Routed once it names its version and deliveries (on PostgreSQL one answer may
    # read the message before the pipeline's commit and its deliveries after).
    shown = wait_until(lambda: (m := api(live, "olive", f"/api/messages/{message_id}"))
                       ["rule_set_version"] and m["deliveries"] and m,
                       what=f"message {control_id} routed")
    if version is not None:
        assert shown["rule_set_version"] == version
    return sorted(d["destination"] for d in shown["deliveries"])



