"""Change review in Debian's headless chromium, against the whole of ``switchboard
serve``: an approver opens a version in review from the queue, reads its diff, runs
the impact preview and watches its progress bar give way to the counts (htmx, no
reload), approves and publishes it, and the engine reports the new version; the
queue, the review page and the history in both themes."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen

from engine.impact_preview import PreviewRunner
from tests.admin.console.live import live_console
from tests.queue_rows import ROOT
from tests.rule_versions import NEW_DESCRIPTION, in_review
from tests.waiting import wait_until


@pytest.fixture
def live(sqlite_engine, monkeypatch):
    # The test runs the preview itself, once the page has shown it waiting: the
    # progress bar is then seen for certain, not only when the runner is slow.
    monkeypatch.setenv("SWITCHBOARD_PREVIEW_RUNNER", "false")
    with live_console(sqlite_engine, ROOT) as console:
        yield console


def css(live, selector: str):
    return live.driver.find_element(By.CSS_SELECTOR, selector)


def test_an_approver_reviews_previews_approves_and_publishes_a_version(live):
    version = in_review(live.engine, previewed=False)
    live.sign_in("abe")
    live.open("/changes/")
    live.wait_for_text("Impact preview not run yet", "#review-queue")
    live.both_themes("changes-queue", "abe")

    css(live, f'#review-queue a[href="/changes/{version}"]').click()
    live.wait_for_text(NEW_DESCRIPTION, ".diff-after")
    assert "cannot be approved yet: run the impact preview" in css(live, "#gates-block").text
    assert not live.driver.find_elements(By.ID, "approve")
    ActionChains(live.driver).send_keys("n").perform()  # the key to the next change
    assert live.driver.current_url.endswith("#change-1")

    limit = css(live, "#preview-limit")
    limit.clear()
    limit.send_keys("50")
    css(live, "#start-preview").click()
    live.wait(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#impact-preview[data-status="queued"] .progress-bar-animated')))
    assert "Waiting for the engine to start it" in css(live, "#preview-status").text
    PreviewRunner(live.engine).run_pending()
    live.wait(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#impact-preview[data-finished="yes"] #preview-counts')))
    assert "treated differently" in css(live, "#preview-status").text
    live.open(f"/changes/{version}")  # the gate passes now: the page offers to approve
    live.wait(seen.element_to_be_clickable((By.ID, "approve")))
    live.both_themes("changes-review", "abe")
    live.open(f"/changes/{version}#what-changed")
    live.driver.refresh()  # a new anchor alone loads nothing: the page in the dark theme
    live.wait(seen.presence_of_element_located(
        (By.CSS_SELECTOR, '.console-page[data-theme="light"]')))
    live.both_themes("changes-review-diff", "abe")

    css(live, "#approve").click()
    live.wait(seen.element_to_be_clickable((By.ID, "publish"))).click()
    live.wait_for_text("the engines switch to it now")
    wait_until(lambda: live.serving.readiness()[1]["rule_set_version"] == version,
               what=f"the engine to run version {version}")
    live.open("/changes/history")
    live.wait_for_text(f"version {version}", "#running-versions")
    assert "version 1" not in css(live, "#running-versions").text
    live.both_themes("changes-history", "abe")
