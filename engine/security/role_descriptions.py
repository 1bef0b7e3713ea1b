"""What each role may do, in one plain line for the admin who gives it: the one place
the console's role choosers read, beside :mod:`engine.security.permissions` (messages,
exceptions, catalog, audit), :mod:`engine.rules.lifecycle` (rule changes) and each task
queue's ``task_access`` in the published catalog (tasks), which decide it.

The duties are fixed here; the task queues are read from the catalog each time, so a
queue published tomorrow shows up beside the roles it names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.rules.catalog_entry import Connection, Transport
from engine.security.roles import Role

TITLES = {
    Role.OPERATOR: "Operator",
    Role.ANALYST: "Analyst",
    Role.COMPLIANCE: "Compliance",
    Role.APPROVER: "Approver",
    Role.CLINICIAN: "Clinician",
    Role.REGISTRAR: "Registrar",
    Role.ADMIN: "Admin",
}
DUTIES = {
    Role.OPERATOR: "keeps messages flowing: watches the message log, retries, fixes and "
                   "skips failed messages",
    Role.ANALYST: "fixes and resends messages that failed checks, and drafts changes to "
                  "the routing rules",
    Role.COMPLIANCE: "reads the message log, the exceptions and the audit trail, and checks "
                     "the trail is intact; changes nothing",
    Role.APPROVER: "approves, rejects and publishes changes to the routing rules",
    Role.CLINICIAN: "reviews clinical work that waits for a person",
    Role.REGISTRAR: "owns patient identity: reviews patient merges and registration work",
    Role.ADMIN: "does everything, including managing users and roles; can act in every "
                "task queue",
}


@dataclass(frozen=True)
class RoleDescription:
    role: Role
    title: str
    duties: str
    acts_in: tuple[str, ...]  # the task queues whose tasks this role works (by name)
    sees_in: tuple[str, ...]  # the queues whose tasks it only sees

    @property
    def summary(self) -> str:
        """What the role does, then where: "reviews …; works tasks in: Nurse review"."""
        parts = [self.duties]
        if self.acts_in:
            parts.append(f"works tasks in: {', '.join(self.acts_in)}")
        if self.sees_in:
            parts.append(f"sees tasks in: {', '.join(self.sees_in)}")
        return "; ".join(parts) + "."

    @property
    def line(self) -> str:
        """One line: "Clinician — reviews …; works tasks in: Nurse review queue."."""
        return f"{self.title} — {self.summary}"


def describe_roles(task_queues: Iterable[Connection]) -> dict[Role, RoleDescription]:
    """Every role's description, with the task queues the published catalog's
    ``task_queues`` (their entries) let it act in or only see. Admins act everywhere,
    so no queue is listed for them."""
    queues = sorted(((c.name, c.task_access) for c in task_queues
                    if c.transport is Transport.TASK_QUEUE and c.task_access is not None),
                    key=lambda queue: queue[0].lower())
    found = {}
    for role in Role:
        everywhere = role is Role.ADMIN
        acts = () if everywhere else tuple(name for name, access in queues
                                           if role in access.act)
        sees = () if everywhere else tuple(name for name, access in queues
                                           if role in access.seeing and name not in acts)
        found[role] = RoleDescription(role, TITLES[role], DUTIES[role], acts, sees)
    return found
