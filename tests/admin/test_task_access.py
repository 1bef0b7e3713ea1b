"""Issue 14, item 7: who may act on a task is decided per queue, by the roles its
catalog entry names, and the REST API and the command line answer alike, on SQLite
and PostgreSQL. One matrix: queue x action x role, each cell a real call.

Before, one global table decided for every queue: a clinician (or an approver)
approved a patient merge in identity review, an operator completed care-coordination
work over REST while ``tasks show`` refused to show it, and no registrar existed to own
identity review."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import insert

from engine.cli import main
from engine.journal import now_utc
from engine.store.models import Task
from tests.queue_rows import PEOPLE, entry

# The roles each queue grants, as the shipped catalog means them; admins everything,
# everywhere. ``retired`` is a queue the catalog does not hold (any more).
ACCESS: dict[str, dict[str, set[str]]] = {
    "nurse-review": {"see": {"operator"}, "payload": {"clinician"}, "act": {"clinician"}},
    "identity-review": {"see": {"operator"}, "payload": {"registrar"}, "act": {"registrar"}},
    "care-coordination": {"see": {"operator"}, "payload": {"clinician"},
                          "act": {"clinician"}},
    "escalations": {"see": set(), "payload": {"operator"}, "act": {"operator"}},
    "retired": {"see": set(), "payload": set(), "act": set()},
}
MODES = {"nurse-review": "hold", "identity-review": "hold", "care-coordination": "notify",
         "escalations": "notify", "retired": "notify"}
# One user per role (tests.queue_rows.PEOPLE), by role.
USERS = {role: name for name, role in PEOPLE.items()}
SECRET = "MRN-SECRET-7"
PAYLOAD = {"patient": {"identifiers": [{"system": "MR", "value": SECRET}]}}


def granted(queue: str, role: str, grant: str) -> bool:
    if role == "admin":
        return True
    access = ACCESS[queue]
    if grant == "see":
        return role in access["see"] | access["payload"] | access["act"]
    return role in access[grant]


def decisions(queue: str) -> tuple[str, ...]:
    return ("approve", "reject") if MODES[queue] == "hold" else ("complete",)


def expected() -> dict[tuple[str, str, str], str]:
    cells = {}
    for queue in ACCESS:
        for role in USERS:
            sees, reads = granted(queue, role, "see"), granted(queue, role, "payload")
            acts = granted(queue, role, "act")
            cells[queue, "list", role] = ("listed+patient" if reads
                                          else "listed" if sees else "-")
            cells[queue, "show", role] = ("payload" if reads
                                          else "metadata" if sees else "refused")
            for action in ("assign", *decisions(queue)):
                cells[queue, action, role] = "ok" if acts else "refused"
            # An admin hands the task to this role's user: only to one who may act.
            cells[queue, "assign-to", role] = "ok" if acts else "invalid"
    return cells


class Rest:
    def __init__(self, api) -> None:
        self.api = api

    def list(self, user: str) -> dict[int, dict[str, Any]]:
        status, body = self.api.call("GET", "/api/tasks?per_page=200", as_user=user)
        assert status in (200, 403), (user, status, body)
        return {item["id"]: item for item in body.get("items", [])}

    def show(self, user: str, task_id: int) -> tuple[str, dict[str, Any] | None]:
        status, body = self.api.call("GET", f"/api/tasks/{task_id}", as_user=user)
        return _answer(status, {200: "ok", 403: "refused"}), body if status == 200 else None

    def act(self, user: str, action: str, task_id: int, body: dict[str, Any]) -> str:
        status, _ = self.api.call("POST", f"/api/tasks/{task_id}/{action}", as_user=user,
                                  json=body)
        # An assignee who may not act on the task is well formed but not what the store
        # allows: the API answers 409 (engine.queues.Unfit) where the CLI says invalid.
        return _answer(status, {200: "ok", 403: "refused", 400: "invalid", 409: "invalid"})


class Cli:
    def __init__(self, url: str, capsys) -> None:
        self.url, self.capsys = url, capsys

    def run(self, *argv: str) -> tuple[int, str]:
        code = main([*argv, "--database", self.url])
        return code, self.capsys.readouterr().out

    def list(self, user: str) -> dict[int, dict[str, Any]]:
        code, out = self.run("tasks", "list", "--as", user, "--json", "--per-page", "200")
        assert code in (0, 1), (user, code)
        items = [json.loads(line) for line in out.splitlines()] if code == 0 else []
        return {item["id"]: item for item in items}

    def show(self, user: str, task_id: int) -> tuple[str, dict[str, Any] | None]:
        code, out = self.run("tasks", "show", str(task_id), "--as", user, "--json")
        return _answer(code, {0: "ok", 1: "refused"}), json.loads(out) if code == 0 else None

    def act(self, user: str, action: str, task_id: int, body: dict[str, Any]) -> str:
        argv = ["tasks", action, str(task_id), "--as", user]
        if "assignee" in body:
            argv.insert(3, body["assignee"])
        if "reason" in body:
            argv += ["--reason", body["reason"]]
        return _answer(self.run(*argv)[0], {0: "ok", 1: "refused", 2: "invalid"})


def _answer(code: int, meaning: dict[int, str]) -> str:
    return meaning.get(code, f"unexpected {code}")


def add_tasks(engine, journal_id: int, queue: str, count: int) -> list[int]:
    kind = "escalation" if queue == "escalations" else "review"
    with engine.begin() as connection:
        return [connection.execute(insert(Task).values(
            journal_id=journal_id, queue=queue, kind=kind, mode=MODES[queue],
            row_id="row-a" if MODES[queue] == "hold" else None, status="open",
            payload=PAYLOAD, created_at=now_utc())).inserted_primary_key[0]
            for _ in range(count)]


def shown(answer: str, view: dict[str, Any] | None) -> str:
    if answer != "ok" or view is None:
        return answer
    if "payload" in view:
        return "payload" if view["payload"] == PAYLOAD else "wrong payload"
    return "leaked" if SECRET in json.dumps(view) else "metadata"


@pytest.mark.parametrize("surface", ["rest", "cli"])
def test_who_may_act_on_a_task_is_decided_by_its_queue(api, engine, capsys, surface):
    client = Rest(api) if surface == "rest" else Cli(
        engine.url.render_as_string(hide_password=False), capsys)
    journal_id, _ = entry(engine)
    actual: dict[tuple[str, str, str], str] = {}
    listed_task = {queue: add_tasks(engine, journal_id, queue, 1)[0] for queue in ACCESS}
    for role, user in USERS.items():
        listed = client.list(user)
        for queue, task_id in listed_task.items():
            item = listed.get(task_id)
            actual[queue, "list", role] = ("-" if item is None else "listed+patient"
                                           if item.get("patient") == f"MR|{SECRET}"
                                           else "listed")
            actual[queue, "show", role] = shown(*client.show(user, task_id))
    for queue in ACCESS:
        doer = USERS["admin"] if not ACCESS[queue]["act"] else USERS[min(ACCESS[queue]["act"])]
        for role, user in USERS.items():
            actions = {"assign": {"assignee": doer}, "approve": {"reason": "same person"},
                       "reject": {"reason": "not the same person"}, "complete": {}}
            for action in ("assign", *decisions(queue)):
                (task_id,) = add_tasks(engine, journal_id, queue, 1)
                actual[queue, action, role] = client.act(user, action, task_id,
                                                         actions[action])
            (task_id,) = add_tasks(engine, journal_id, queue, 1)
            actual[queue, "assign-to", role] = client.act(USERS["admin"], "assign", task_id,
                                                          {"assignee": user})
    wrong = [f"{queue} {action} as {role}: {actual[queue, action, role]}, not {want}"
             for (queue, action, role), want in expected().items()
             if actual[queue, action, role] != want]
    assert wrong == []
