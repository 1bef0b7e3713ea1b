"""The directory groups admins map to Switchboard roles, beside those the LDAP
configuration maps (:meth:`engine.security.sign_in.SignIn.roles_of` reads both). A group
is named as in the configuration, by its DN or by its cn alone; two spellings of one
DN are one group. Every change is audited in the transaction that makes it.

A change counts from each user's next sign-in: a session, and the roles an LDAP user's
API tokens carry, keep the roles of the sign-in that made them.
"""

from __future__ import annotations

import builtins
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from engine.errors import SwitchboardError
from engine.security.audit import AuditLog, Clock, now_utc
from engine.security.group_roles import mapping_key, normal_dn
from engine.security.users import checked_role
from engine.store.models import LdapRoleMapping

LONGEST_GROUP = 255  # ldap_role_mappings.group_name
TARGET = "ldap_role_mapping"


class RoleMappingError(SwitchboardError):
    """A mapping that cannot be made or removed as asked."""


@dataclass(frozen=True)
class RoleMapping:
    id: int
    group: str
    role: str
    created_at: datetime


class LdapRoleMappings:
    def __init__(self, engine: Engine, clock: Clock = now_utc) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._audit = AuditLog(engine, clock)
        self._clock = clock

    def list(self) -> builtins.list[RoleMapping]:
        """Every mapping, by group (whatever its case) and role: sorted here, as the
        stores' collations differ."""
        with self._sessions() as session:
            found = [_view(row) for row in session.scalars(select(LdapRoleMapping))]
        return sorted(found, key=lambda m: (m.group.casefold(), m.role, m.id))

    def add(self, group: str, role: str, actor: str) -> RoleMapping:
        """Let the members of ``group`` (a DN or a cn) hold ``role``."""
        name = checked_group(group)
        try:
            checked = checked_role(role).value
        except SwitchboardError as exc:
            raise RoleMappingError(exc.reason, hint=exc.hint) from None
        try:
            with self._sessions.begin() as session:
                self._audit.lock(session)
                key = mapping_key(name)
                for row in session.scalars(select(LdapRoleMapping)
                                           .where(LdapRoleMapping.role == checked)):
                    if mapping_key(row.group_name) == key:
                        raise _duplicate(row.group_name, checked)
                row = LdapRoleMapping(group_name=name, role=checked, created_at=self._clock())
                session.add(row)
                session.flush()
                self._audit.record(session, actor, "ldap_mapping.add", TARGET, str(row.id),
                                   {"group": name, "role": checked})
                return _view(row)
        except IntegrityError:
            raise _duplicate(name, checked) from None

    def remove(self, mapping_id: int, actor: str) -> RoleMapping:
        """Take a mapping away; what it was."""
        with self._sessions.begin() as session:
            self._audit.lock(session)
            row = session.get(LdapRoleMapping, mapping_id)
            if row is None:
                raise RoleMappingError(f"no group mapping {mapping_id}",
                                       hint="It may have been removed already; reload the page")
            removed = _view(row)
            session.delete(row)
            self._audit.record(session, actor, "ldap_mapping.remove", TARGET, str(mapping_id),
                               {"group": removed.group, "role": removed.role})
            return removed


def checked_group(group: str) -> str:
    """``group`` without the spaces around it, if it can name a group: a DN, or a cn
    without '='."""
    name = group.strip()
    if not name:
        raise RoleMappingError("the group is empty",
                               hint="Name the group by its DN "
                                    "(cn=nurses,ou=groups,dc=example,dc=org) or its cn (nurses)")
    if len(name) > LONGEST_GROUP:
        raise RoleMappingError(f"the group is longer than {LONGEST_GROUP} characters",
                               hint="Name the group by its cn instead")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise RoleMappingError("the group holds a control character",
                               hint="Type the group's name again")
    if "=" in name and normal_dn(name) is None:
        raise RoleMappingError(f"{name!r} is neither a DN nor a cn",
                               hint="A DN is like cn=nurses,ou=groups,dc=example,dc=org; "
                                    "a cn has no '='")
    return name


def _view(row: LdapRoleMapping) -> RoleMapping:
    return RoleMapping(row.id, row.group_name, row.role, row.created_at)


def _duplicate(group: str, role: str) -> RoleMappingError:
    return RoleMappingError(f"the group {group!r} gives the role {role} already",
                            hint="Nothing to add")
