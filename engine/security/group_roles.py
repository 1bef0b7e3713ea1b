"""Which Switchboard roles a directory user's groups give them: a pure mapping from
group DNs to roles, so the rule is tested with tables and not with a directory.

A mapping names a group by its DN or by its cn alone. DNs are compared the way a
directory compares them for these groups: without regard to case or to spaces around
the separators.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from engine.security.roles import Role


def roles_for_groups(groups: Iterable[str], mapping: Mapping[str, Role]) -> frozenset[Role]:
    """The roles that ``mapping`` (a group's DN or cn -> role) gives to a member of
    ``groups`` (group DNs); empty when no group is mapped, so the user gets nothing."""
    wanted: dict[str, set[Role]] = {}
    for name, role in mapping.items():
        wanted.setdefault(mapping_key(name), set()).add(role)
    roles: set[Role] = set()
    for group in groups:
        for key in _keys_of_group(group):
            roles |= wanted.get(key, set())
    return frozenset(roles)


def normal_dn(dn: str) -> str | None:
    """``dn`` in one spelling (lower case, no spaces around separators); None when it
    is not a DN."""
    try:
        parts = parse_dn(dn, strip=True)
    except (LDAPInvalidDnError, IndexError):
        return None
    return "".join(f"{kind.lower()}={value.lower()}{separator}"
                   for kind, value, separator in parts)


def mapping_key(name: str) -> str:
    """What a mapping's group name stands for: one key for every spelling of a DN, and
    another for a cn, so two spellings of one group are seen to be the same."""
    normal = normal_dn(name) if "=" in name else None
    return f"dn:{normal}" if normal is not None else f"cn:{name.strip().lower()}"


def _keys_of_group(dn: str) -> list[str]:
    normal = normal_dn(dn)
    if normal is None:
        return []  # a directory's odd value is no group of ours, never a role
    keys = [f"dn:{normal}"]
    kind, value, _ = parse_dn(dn, strip=True)[0]
    if kind.lower() == "cn":
        keys.append(f"cn:{value.lower()}")
    return keys
