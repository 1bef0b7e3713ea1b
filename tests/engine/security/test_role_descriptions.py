"""Each role's one-line description: its duties, and the task queues the published
catalog lets it work or only see, read from the queues' task_access."""

from __future__ import annotations

from engine.rules.catalog_entry import Connection
from engine.security.role_descriptions import describe_roles
from engine.security.roles import Role


def _queue(name: str, see: list[str], act: list[str]) -> Connection:
    return Connection.from_dict({
        "id": name.lower().replace(" ", "-"), "name": name,
        "description": "A queue of the test.", "direction": "outbound",
        "transport": "task-queue", "endpoint": {"queue": name.lower().replace(" ", "-")},
        "format": "canonical-json", "task_access": {"see": see, "act": act}})


def test_a_role_is_described_with_the_queues_it_works_and_sees():
    described = describe_roles([
        _queue("Nurse review", ["operator"], ["clinician"]),
        _queue("Abnormal results review", [], ["clinician"]),
    ])
    assert described[Role.CLINICIAN].line == (
        "Clinician — reviews clinical work that waits for a person; works tasks in: "
        "Abnormal results review, Nurse review.")
    assert described[Role.OPERATOR].sees_in == ("Nurse review",)
    assert described[Role.OPERATOR].acts_in == ()
    assert described[Role.ADMIN].acts_in == ()  # every queue: none listed
    assert described[Role.COMPLIANCE].line.endswith("changes nothing.")


def test_every_role_has_a_description_without_any_queue():
    described = describe_roles([])
    assert set(described) == set(Role)
    assert all(d.line.startswith(f"{d.title} — ") for d in described.values())
