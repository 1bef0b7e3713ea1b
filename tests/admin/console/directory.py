"""The console's LDAP settings for the tests' private slapd (tests.ldap_server)."""

from __future__ import annotations

from tests.ldap_server import ADMINS, PEOPLE

BREAK_GLASS = "adam"  # tests.queue_rows.PEOPLE's local admin


def ldap_settings(url: str) -> dict[str, object]:
    """Users bound by DN, groups read from memberOf; the configuration maps the admins'
    and operators' groups, so pete's parking-permits group gives nothing until an admin
    maps it on the users screen."""
    return {"url": url, "user_dn_template": f"uid={{username}},{PEOPLE}",
            "group_mode": "memberOf",
            "group_roles": {ADMINS: "admin", "switchboard-operators": "operator"},
            "connect_timeout": 5, "receive_timeout": 5}
