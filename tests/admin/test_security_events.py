"""Security events (failed sign-ins, permission denials, content views) are audited and
counted on /metrics from the store, whichever process saw them."""

from __future__ import annotations

import re

from engine.security.security_events import CONTENT_VIEWS, EVENTS, count_security_events
from tests.queue_rows import task


def _metric(api, event: str) -> float:
    text = api.client.get("/metrics").get_data(as_text=True)
    found = re.search(rf'switchboard_security_events_total\{{event="{event}"\}} (\S+)', text)
    assert found, text[-2000:]
    return float(found.group(1))


def test_an_api_permission_denial_is_audited_and_counted(api, engine):
    before = _metric(api, "access_denied")
    status, _ = api.call("POST", "/api/exceptions/1/retry", "cora", json={})
    assert status == 403
    assert _metric(api, "access_denied") == before + 1
    assert count_security_events(engine)["access_denied"] == before + 1


def test_a_queue_refusal_is_a_denial_too(api, engine):
    """A clinician may use the task API, but not an identity-review task: the queue
    refuses (403), and that refusal is audited as the role checks are."""
    task_id = task(engine, None, queue="identity-review", kind="identity_review")
    before = count_security_events(engine)["access_denied"]
    status, _ = api.call("POST", f"/api/tasks/{task_id}/approve", "cora", json={})
    assert status == 403
    assert count_security_events(engine)["access_denied"] == before + 1


def test_failed_sign_ins_are_counted(api, engine):
    app = api.client.application
    before = _metric(api, "sign_in_failure")
    app.extensions["switchboard.sign_in"].password("olive", "wrong password!", "10.0.0.9")
    assert _metric(api, "sign_in_failure") == before + 1


def test_opening_a_tasks_page_with_its_patient_data_is_a_content_view(api, engine):
    """A task's page shows its payload (patient data) to whom its queue lets read it:
    that view is audited as ``task.view`` and counted as a content view like a
    message's content; one that shows no payload is not."""
    task_id = task(engine, None, queue="nurse-review")
    before = _metric(api, "content_view")
    status, shown = api.call("GET", f"/api/tasks/{task_id}", "cora")
    assert status == 200 and "payload" in shown
    assert _metric(api, "content_view") == before + 1
    assert count_security_events(engine)["content_view"] == before + 1
    status, shown = api.call("GET", f"/api/tasks/{task_id}", "olive")  # sees, may not read
    assert status == 200 and "payload" not in shown
    assert _metric(api, "content_view") == before + 1


def test_every_security_event_is_counted_by_its_own_actions():
    """Each audit action counts towards one security event only."""
    actions = [action for actions in EVENTS.values() for action in actions]
    assert len(actions) == len(set(actions))
    assert EVENTS["content_view"] == CONTENT_VIEWS >= {"content.view", "task.view"}
