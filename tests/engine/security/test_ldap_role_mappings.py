"""Directory groups mapped to roles by admins: named by DN or cn, checked, never twice
for one role, every change audited, and read by sign-in beside the configuration's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.security.audit import AuditLog
from engine.security.console_sessions import ConsoleSessions, SessionPolicy
from engine.security.ldap_directory import Directory, LdapSettings
from engine.security.ldap_role_mappings import LdapRoleMappings, RoleMapping, RoleMappingError
from engine.security.roles import Role
from engine.security.sign_in import SignIn
from engine.store.models import AuditEvent
from tests.store_template import migrated

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PARKING = "cn=parking-permits,ou=groups,dc=example,dc=org"
NURSES = "cn=nurses,ou=groups,dc=example,dc=org"


@pytest.fixture
def mappings(engine):
    migrated(engine)
    return LdapRoleMappings(engine, lambda: NOW)


def _events(engine):
    with Session(engine) as session:
        return [(e.actor, e.action, e.target_type, e.target_id, e.detail)
                for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_mappings_are_added_listed_and_removed_each_audited(engine, mappings):
    parking = mappings.add(f"  {PARKING} ", "operator", "adam")
    nurses = mappings.add("Nurses", "clinician", "adam")
    assert parking == RoleMapping(parking.id, PARKING, "operator", NOW)
    assert mappings.list() == [parking, nurses]  # by group, whatever its case
    assert mappings.remove(parking.id, "ada") == parking
    assert mappings.list() == [nurses]
    assert _events(engine) == [
        ("adam", "ldap_mapping.add", "ldap_role_mapping", str(parking.id),
         {"group": PARKING, "role": "operator"}),
        ("adam", "ldap_mapping.add", "ldap_role_mapping", str(nurses.id),
         {"group": "Nurses", "role": "clinician"}),
        ("ada", "ldap_mapping.remove", "ldap_role_mapping", str(parking.id),
         {"group": PARKING, "role": "operator"}),
    ]
    assert AuditLog(engine).verify() == []


def test_one_group_may_give_several_roles(mappings):
    mappings.add(PARKING, "operator", "adam")
    mappings.add(PARKING, "analyst", "adam")
    assert [(m.group, m.role) for m in mappings.list()] == [(PARKING, "analyst"),
                                                           (PARKING, "operator")]


@pytest.mark.parametrize(("first", "again"), [
    (PARKING, PARKING),
    (PARKING, "CN=Parking-Permits, OU=Groups, DC=Example, DC=Org"),  # one DN, spelt two ways
    ("nurses", " NURSES "),
])
def test_a_group_gives_a_role_once(engine, mappings, first, again):
    mappings.add(first, "operator", "adam")
    with pytest.raises(RoleMappingError) as raised:
        mappings.add(again, "operator", "adam")
    assert str(raised.value) == (f"the group {first.strip()!r} gives the role operator "
                                 "already. Nothing to add")
    assert len(mappings.list()) == 1 and len(_events(engine)) == 1


@pytest.mark.parametrize(("group", "role", "error"), [
    ("", "operator", "the group is empty. Name the group by its DN "
                     "(cn=nurses,ou=groups,dc=example,dc=org) or its cn (nurses)"),
    ("   ", "operator", "the group is empty. Name the group by its DN "
                        "(cn=nurses,ou=groups,dc=example,dc=org) or its cn (nurses)"),
    ("=nurses", "operator", "'=nurses' is neither a DN nor a cn. A DN is like "
                            "cn=nurses,ou=groups,dc=example,dc=org; a cn has no '='"),
    ("cn=nurses,,dc=org", "operator", "'cn=nurses,,dc=org' is neither a DN nor a cn. A DN "
                                      "is like cn=nurses,ou=groups,dc=example,dc=org; a cn "
                                      "has no '='"),
    ("nurses\x00", "operator", "the group holds a control character. "
                               "Type the group's name again"),
    ("n" * 256, "operator", "the group is longer than 255 characters. "
                            "Name the group by its cn instead"),
    ("nurses", "root", "unknown role 'root'. Choose one of: admin, analyst, approver, "
                       "clinician, compliance, operator, registrar"),
    ("nurses", "", "unknown role ''. Choose one of: admin, analyst, approver, "
                   "clinician, compliance, operator, registrar"),
])
def test_a_mapping_that_cannot_work_is_refused_and_not_audited(engine, mappings, group,
                                                                 role, error):
    with pytest.raises(RoleMappingError) as raised:
        mappings.add(group, role, "adam")
    assert str(raised.value) == error
    assert mappings.list() == [] and _events(engine) == []


def test_removing_a_mapping_that_is_gone_is_refused(engine, mappings):
    kept = mappings.add(NURSES, "clinician", "adam")
    mappings.remove(kept.id, "adam")
    with pytest.raises(RoleMappingError) as raised:
        mappings.remove(kept.id, "adam")
    assert str(raised.value) == (f"no group mapping {kept.id}. "
                                 "It may have been removed already; reload the page")
    assert len(_events(engine)) == 2


def test_sign_in_gives_the_roles_mapped_here_beside_the_configuration_s(engine, mappings):
    settings = LdapSettings.from_mapping({
        "url": "ldap://127.0.0.1:1", "user_dn_template": "uid={username},dc=example,dc=org",
        "group_mode": "memberOf", "group_roles": {"switchboard-admins": "admin"}})
    sign_in = SignIn(engine, ConsoleSessions(engine, SessionPolicy()), Directory(settings))
    assert sign_in.roles_of(frozenset({PARKING})) == set()
    parking = mappings.add("Parking-Permits", "operator", "adam")
    mappings.add(NURSES.upper(), "clinician", "adam")
    assert sign_in.roles_of(frozenset({PARKING, NURSES})) == {Role.OPERATOR, Role.CLINICIAN}
    mappings.remove(parking.id, "adam")
    assert sign_in.roles_of(frozenset({PARKING})) == set()
