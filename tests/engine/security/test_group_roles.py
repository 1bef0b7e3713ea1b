"""Directory groups to Switchboard roles: by DN or cn, without regard to case, and
nothing for a group no one mapped."""

from __future__ import annotations

import pytest

from engine.security.group_roles import normal_dn, roles_for_groups
from engine.security.roles import Role

OPERATORS = "cn=switchboard-operators,ou=groups,dc=example,dc=org"
ADMINS = "cn=switchboard-admins,ou=groups,dc=example,dc=org"
MAPPING = {ADMINS: Role.ADMIN, "switchboard-operators": Role.OPERATOR}


@pytest.mark.parametrize(("groups", "roles"), [
    ([OPERATORS], {Role.OPERATOR}),
    ([ADMINS, OPERATORS], {Role.ADMIN, Role.OPERATOR}),
    (["CN=Switchboard-Admins, OU=Groups, DC=Example, DC=Org"], {Role.ADMIN}),
    (["cn=SWITCHBOARD-OPERATORS,ou=elsewhere,dc=example,dc=org"], {Role.OPERATOR}),  # by cn
    (["cn=switchboard-admins,ou=other,dc=example,dc=org"], set()),  # a DN names one place
    (["cn=parking-permits,ou=groups,dc=example,dc=org"], set()),
    (["ou=switchboard-operators,dc=example,dc=org"], set()),  # a cn is a cn
    (["not a dn", ""], set()),
    ([], set()),
])
def test_groups_give_the_roles_mapped_to_them(groups, roles):
    assert roles_for_groups(groups, MAPPING) == roles


def test_two_names_for_one_group_give_both_roles():
    mapping = {ADMINS: Role.ADMIN, "Switchboard-Admins": Role.APPROVER}
    assert roles_for_groups([ADMINS], mapping) == {Role.ADMIN, Role.APPROVER}


@pytest.mark.parametrize(("dn", "normal"), [
    ("CN=A B , OU=Groups,DC=Example", "cn=a b,ou=groups,dc=example"),
    ("cn=a\\,b+uid=x,dc=org", "cn=a\\,b+uid=x,dc=org"),
    ("no equals sign", None),
    ("", None),
])
def test_a_dn_has_one_spelling(dn, normal):
    assert normal_dn(dn) == normal
