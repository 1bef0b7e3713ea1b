"""The LDAP configuration: read from a mapping, checked as a whole, and refused with the
setting named when it cannot work."""

from __future__ import annotations

from dataclasses import fields

import pytest

from engine.security.ldap_settings import LdapSettings, LdapSettingsError, LdapUrl, parse_url
from engine.security.roles import Role

TEMPLATE = {"url": "ldap://ldap.example.org", "group_search_base": "ou=groups,dc=example,dc=org",
            "user_dn_template": "uid={username},ou=people,dc=example,dc=org",
            "group_roles": {"switchboard-operators": "operator"}}
SEARCH = {**{key: value for key, value in TEMPLATE.items() if key != "user_dn_template"},
          "user_search_base": "ou=people,dc=example,dc=org",
          "bind_dn": "cn=switchboard,ou=services,dc=example,dc=org",
          "bind_password_env": "SWITCHBOARD_LDAP_BIND_PASSWORD"}
DROP = object()  # a change that takes the setting out


def changed(base: dict[str, object], change: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in {**base, **change}.items() if value is not DROP}


def test_a_dn_template_configuration_with_its_defaults():
    settings = LdapSettings.from_mapping(TEMPLATE)
    assert settings.urls == (LdapUrl("ldap.example.org", 389, ldaps=False),)
    assert settings.group_roles == {"switchboard-operators": Role.OPERATOR}
    assert not settings.searches_users
    assert (settings.group_mode, settings.start_tls, settings.ca_file) == ("member", False, None)
    assert (settings.connect_timeout, settings.receive_timeout) == (5, 10)
    assert (settings.user_search_filter, settings.username_attribute) == ("(uid={username})",
                                                                          "uid")


def test_a_search_configuration_names_the_password_s_variable_only():
    settings = LdapSettings.from_mapping(changed(SEARCH, {
        "url": DROP, "urls": ["ldaps://ldap1.example.org/", "ldaps://ldap2.example.org:3269"],
        "group_mode": "memberOf", "group_search_base": DROP, "ca_file": "/etc/ca.pem",
        "connect_timeout": 2, "receive_timeout": 3.0}))
    assert settings.searches_users and settings.uses_tls
    assert [str(url) for url in settings.urls] == ["ldaps://ldap1.example.org:636",
                                                   "ldaps://ldap2.example.org:3269"]
    assert settings.bind_password_env == "SWITCHBOARD_LDAP_BIND_PASSWORD"
    assert (settings.connect_timeout, settings.receive_timeout) == (2, 3)


@pytest.mark.parametrize(("url", "parsed"), [
    ("ldap://127.0.0.1:3890/", LdapUrl("127.0.0.1", 3890, ldaps=False)),  # ldap3 refuses it
    ("ldap://127.0.0.1:3890", LdapUrl("127.0.0.1", 3890, ldaps=False)),
    ("ldaps://ldap.example.org", LdapUrl("ldap.example.org", 636, ldaps=True)),
    (" LDAPS://[::1]:6360/ ", LdapUrl("::1", 6360, ldaps=True)),
])
def test_a_url_names_one_server(url, parsed):
    assert parse_url(url) == parsed


@pytest.mark.parametrize(("url", "message"), [
    ("ldap.example.org", "url: 'ldap.example.org' must start with ldap:// or ldaps://"),
    ("http://ldap.example.org", "must start with ldap:// or ldaps://"),
    ("ldap://", "url: 'ldap://' names no server"),
    ("ldap://h:99999", "url: 'ldap://h:99999' is not a URL (Port out of range 0-65535)"),
    ("ldap://h/dc=example,dc=org", "has more than a server in it; write ldap://host:port"),
    ("ldap://h/??sub?(uid=x)", "has more than a server in it"),
    ("ldap://admin:secret@h", "carries credentials; use bind_dn and bind_password_env"),
])
def test_a_url_that_is_more_or_less_than_a_server_is_refused(url, message):
    with pytest.raises(LdapSettingsError, match=message.replace("?", r"\?").replace("(", r"\(")
                       .replace(")", r"\)")):
        LdapSettings.from_mapping({**TEMPLATE, "url": url})


@pytest.mark.parametrize(("change", "message"), [
    ({"user_dn_templat": "x"}, "user_dn_templat: not an LDAP setting. Did you mean "
                               "user_dn_template?"),
    ({"password": "hunter2"}, "password: not an LDAP setting."),
    ({"urls": ["ldap://a"]}, "url: give the directory's URL in 'url', or several in 'urls'"),
    ({"url": None}, "url: must be non-empty text, not None"),
    ({"bind_dn": "cn=x,dc=org"}, "bind_dn: only used with user_search_base"),
    ({"user_search_base": "ou=people,dc=org"}, "user_dn_template: give either"),
    ({"user_dn_template": "uid=x,ou=people,dc=org"}, "has no {username} placeholder"),
    ({"user_dn_template": "uid={user},ou=people"}, "may hold only the placeholder {username}"),
    ({"user_dn_template": "{username}"}, "does not make a DN"),
    ({"group_mode": "memberof"}, "group_mode: must be 'member' or 'memberOf', not "
                                 "'memberof'; did you mean 'memberOf'?"),
    ({"group_mode": "memberOf"}, "group_search_base: not used with group_mode 'memberOf'"),
    ({"group_search_base": None}, "group_search_base: must be non-empty text"),
    ({"group_search_base": DROP}, "group_search_base: needed to find groups by member"),
    ({"group_search_base": "groups"}, "group_search_base: 'groups' is not a DN"),
    ({"group_roles": {}}, "group_roles: must map at least one group"),
    ({"group_roles": {"admins": "admn"}}, "group_roles['admins']: 'admn' is not a role "
                                          "(roles: analyst, approver, compliance, operator, "
                                          "admin, clinician, registrar); did you mean 'admin'?"),
    ({"group_roles": {"cn=a,,": "admin"}}, "is neither a DN nor a cn"),
    ({"start_tls": "yes"}, "start_tls: must be true or false, not 'yes'"),
    ({"url": "ldaps://h", "start_tls": True}, "start_tls: ldaps:// is TLS already"),
    ({"ca_file": "/etc/ca.pem"}, "ca_file: only used with start_tls or an ldaps:// URL"),
    ({"connect_timeout": 0}, "connect_timeout: must be a whole number of seconds from 1 to "
                             "300, not 0"),
    ({"receive_timeout": 0.5}, "receive_timeout: must be a whole number of seconds, not 0.5"),
    ({"receive_timeout": True}, "receive_timeout: must be a whole number of seconds"),
    ({"username_attribute": "u id"}, "username_attribute: 'u id' is not an attribute name"),
])
def test_a_dn_template_configuration_that_cannot_work_is_refused(change, message):
    with pytest.raises(LdapSettingsError) as refused:
        LdapSettings.from_mapping(changed(TEMPLATE, change))
    assert message in str(refused.value)


@pytest.mark.parametrize(("change", "message"), [
    ({"bind_dn": DROP}, "bind_dn: needed to search for users under user_search_base"),
    ({"bind_password_env": DROP}, "bind_password_env: needed to search for users"),
    ({"bind_password_env": "s3cret!pass"}, "bind_password_env: must name an environment "
                                           "variable (letters, digits, _), never hold the "
                                           "password itself"),
    ({"user_search_filter": "uid={username}"}, "user_search_filter: 'uid={username}' is not "
                                               "an LDAP filter"),
    ({"user_search_filter": "(uid={username}))"}, "is not an LDAP filter"),
    ({"user_search_filter": "(uid=x)"}, "has no {username} placeholder"),
    ({"bind_dn": "switchboard"}, "bind_dn: 'switchboard' is not a DN"),
])
def test_a_search_configuration_that_cannot_work_is_refused(change, message):
    with pytest.raises(LdapSettingsError) as refused:
        LdapSettings.from_mapping(changed(SEARCH, change))
    assert message in str(refused.value)


def test_settings_made_directly_are_checked_too():
    with pytest.raises(LdapSettingsError, match="user_dn_template: give either"):
        LdapSettings(urls=(parse_url("ldap://h"),), group_roles={"g": Role.ADMIN},
                     group_search_base="ou=groups,dc=org")


def test_every_setting_has_a_description_and_an_example():
    for setting in fields(LdapSettings):
        assert setting.metadata["description"], setting.name
        assert "example" in setting.metadata, setting.name
