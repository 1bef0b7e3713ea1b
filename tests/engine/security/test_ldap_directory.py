"""Sign-in against a real slapd: users found by DN template or by a service account's
search, groups by member or memberOf, every wrong credential refused, and a directory
that is down, hung or unverifiable refused with a clear error, never let through."""

from __future__ import annotations

import logging

import pytest

from engine.errors import SwitchboardError
from engine.security.ldap_directory import (
    Directory,
    DirectoryRefused,
    DirectoryUnavailable,
    DirectoryUser,
    LdapSettings,
    LdapSettingsError,
    roles_for_groups,
)
from engine.security.roles import Role
from tests.ldap_server import (
    ADMINS,
    BASE_DN,
    GROUPS,
    OPERATORS,
    PARKING,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    USERS,
    user_dn,
)
from tests.ports import free_port

PASSWORD_ENV = "SWITCHBOARD_TEST_LDAP_BIND_PASSWORD"
ENVIRON = {PASSWORD_ENV: SERVICE_PASSWORD}
# One group by its DN, one by its cn; PARKING maps to nothing.
GROUP_ROLES = {ADMINS.upper(): "admin", "Switchboard-Operators": "operator"}
LOOKUPS = {
    "dn template": {"user_dn_template": f"uid={{username}},{PEOPLE}"},
    "search then bind": {"user_search_base": PEOPLE, "bind_dn": SERVICE_DN,
                         "bind_password_env": PASSWORD_ENV},
}
GROUP_MODES = {
    "member": {"group_mode": "member", "group_search_base": GROUPS},
    "memberOf": {"group_mode": "memberOf"},
}


def settings(url: str, lookup: str = "dn template", groups: str = "member",
             **more: object) -> LdapSettings:
    # The trailing slash, which ldap3 refuses, is how a URL is often written.
    raw = {"url": f"{url}/", "group_roles": GROUP_ROLES, "connect_timeout": 5,
           "receive_timeout": 5, **LOOKUPS[lookup], **GROUP_MODES[groups], **more}
    return LdapSettings.from_mapping(raw)


def directory(url: str, lookup: str = "dn template", groups: str = "member",
              **more: object) -> Directory:
    return Directory(settings(url, lookup, groups, **more), environ=ENVIRON)


def password(uid: str) -> str:
    return USERS[uid][0]


@pytest.mark.parametrize("groups", GROUP_MODES)
@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize(("uid", "expected_groups", "roles"), [
    ("olive", {OPERATORS}, {Role.OPERATOR}),
    ("adam", {ADMINS, OPERATORS}, {Role.ADMIN, Role.OPERATOR}),
    ("pete", {PARKING}, set()),  # only in a group that gives no role
    ("nora", set(), set()),  # in no group at all
])
def test_a_user_signs_in_with_the_groups_that_give_their_roles(
        ldap_server, lookup, groups, uid, expected_groups, roles):
    source = directory(ldap_server.url, lookup, groups)
    user = source.authenticate(uid, password(uid))
    assert user == DirectoryUser(uid, user_dn(uid), frozenset(expected_groups))
    assert roles_for_groups(user.groups, source.settings.group_roles) == roles


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_the_name_is_the_directory_s_however_it_was_typed(ldap_server, lookup):
    user = directory(ldap_server.url, lookup).authenticate("OLIVE", password("olive"))
    assert (user.username, user.dn) == ("olive", user_dn("olive"))


@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize(("username", "given", "why"), [
    ("olive", "adam-admin-pass", "wrong password or unknown user"),
    ("olive", "olive-operator-pass ", "wrong password or unknown user"),
    ("olive", "", "empty password"),  # LDAP would take it for an anonymous bind
    ("", "olive-operator-pass", "no usable user name"),
    ("   ", "olive-operator-pass", "no usable user name"),
    ("x" * 257, "olive-operator-pass", "no usable user name"),
])
def test_wrong_or_empty_credentials_are_refused(ldap_server, lookup, username, given, why):
    with pytest.raises(DirectoryRefused) as refused:
        directory(ldap_server.url, lookup).authenticate(username, given)
    assert str(refused.value) == "the user name or password is not correct"
    assert refused.value.why == why


@pytest.mark.parametrize(("lookup", "why"), [
    ("dn template", "wrong password or unknown user"),
    ("search then bind", "unknown user"),
])
def test_an_unknown_user_is_refused_in_the_same_words(ldap_server, lookup, why):
    with pytest.raises(DirectoryRefused) as refused:
        directory(ldap_server.url, lookup).authenticate("mallory", "olive-operator-pass")
    assert str(refused.value) == "the user name or password is not correct"
    assert refused.value.why == why


@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize("username", [
    "*)(uid=*", "*", "olive*", "*)(|(uid=*", "olive)(uid=*", "olive,ou=people",
    "uid=olive,ou=people,dc=example,dc=org", "olive\\", "olive\x00",
])
def test_a_user_name_cannot_inject_into_a_filter_or_a_dn(ldap_server, lookup, username):
    with pytest.raises(DirectoryRefused):
        directory(ldap_server.url, lookup).authenticate(username, password("olive"))


def test_a_search_that_finds_two_users_lets_neither_in(ldap_server):
    whole_tree = directory(ldap_server.url, "search then bind", user_search_base=BASE_DN)
    with pytest.raises(DirectoryRefused) as refused:
        whole_tree.authenticate("sam", password("sam"))
    assert refused.value.why == "several users match"
    people = directory(ldap_server.url, "search then bind")
    assert people.authenticate("sam", password("sam")).dn == user_dn("sam")


def test_a_refused_service_account_makes_the_directory_unavailable(ldap_server):
    source = Directory(settings(ldap_server.url, "search then bind"),
                       environ={PASSWORD_ENV: "not-the-service-password"})
    with pytest.raises(DirectoryUnavailable) as unavailable:
        source.authenticate("olive", password("olive"))
    assert "the service account bind_dn was refused: invalidCredentials (49)" in str(
        unavailable.value)
    assert f"check bind_dn and the password in {PASSWORD_ENV}" in str(unavailable.value)
    assert "not-the-service-password" not in str(unavailable.value)


@pytest.mark.parametrize("environ", [{}, {PASSWORD_ENV: ""}])
def test_a_missing_service_password_is_a_configuration_error(ldap_server, environ):
    with pytest.raises(LdapSettingsError, match=f"bind_password_env: the environment "
                                                f"variable {PASSWORD_ENV} is not set"):
        Directory(settings(ldap_server.url, "search then bind"), environ=environ)


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_a_stopped_directory_refuses_everyone_with_a_clear_error_until_it_is_back(
        ldap_server_to_stop, lookup, caplog):
    source = directory(ldap_server_to_stop.url, lookup, connect_timeout=2)
    assert source.authenticate("olive", password("olive")).username == "olive"
    ldap_server_to_stop.stop()
    with caplog.at_level(logging.DEBUG), pytest.raises(DirectoryUnavailable) as unavailable:
        source.authenticate("olive", password("olive"))
    assert isinstance(unavailable.value, SwitchboardError)
    assert str(unavailable.value).startswith(
        f"the directory cannot be asked: ldap://127.0.0.1:{ldap_server_to_stop.port} "
        "(socket connection error while opening: [Errno 111] Connection refused)")
    assert unavailable.value.hint == (
        "Nobody can sign in through the directory until it answers; check that the "
        "directory server is running and that Switchboard can reach it")
    assert password("olive") not in caplog.text + str(unavailable.value)
    ldap_server_to_stop.start()
    assert source.authenticate("olive", password("olive")).username == "olive"


def test_a_wrong_password_is_still_refused_while_the_directory_is_down(ldap_server_to_stop):
    ldap_server_to_stop.stop()
    with pytest.raises(DirectoryUnavailable):
        directory(ldap_server_to_stop.url).authenticate("olive", "guess")


def test_a_hung_directory_times_out_as_unavailable(ldap_server_to_stop):
    source = directory(ldap_server_to_stop.url, "search then bind", receive_timeout=1)
    ldap_server_to_stop.pause()
    with pytest.raises(DirectoryUnavailable, match="timed out"):
        source.authenticate("olive", password("olive"))
    ldap_server_to_stop.resume()
    assert source.authenticate("olive", password("olive")).username == "olive"


def test_the_next_server_is_asked_when_the_first_is_down(ldap_server):
    nobody = f"ldap://127.0.0.1:{free_port()}"
    source = Directory(LdapSettings.from_mapping({
        "urls": [nobody, ldap_server.url], "group_roles": GROUP_ROLES,
        **LOOKUPS["dn template"], **GROUP_MODES["memberOf"]}))
    assert source.authenticate("adam", password("adam")).groups == {ADMINS, OPERATORS}


def tls_settings(server, secure: str) -> dict[str, object]:
    if secure == "start_tls":
        return {"url": server.named_url, "start_tls": True}
    return {"url": server.ldaps_url}


@pytest.mark.parametrize("secure", ["start_tls", "ldaps"])
def test_tls_to_a_directory_whose_certificate_the_ca_file_signed(ldap_server, secure):
    tls = tls_settings(ldap_server, secure)
    source = directory(tls.pop("url"), "search then bind", "memberOf",
                       ca_file=ldap_server.ca_file, **tls)
    assert source.authenticate("olive", password("olive")).groups == {OPERATORS}


@pytest.mark.parametrize("secure", ["start_tls", "ldaps"])
def test_tls_to_a_certificate_no_trusted_ca_signed_is_unavailable(ldap_server, secure):
    tls = tls_settings(ldap_server, secure)
    source = directory(tls.pop("url"), ca_file=ldap_server.other_ca_file, **tls)
    with pytest.raises(DirectoryUnavailable, match=(
            r"its certificate is refused \(check ca_file and the URL's host name\): .*"
            "certificate verify failed: self-signed certificate in certificate chain")):
        source.authenticate("olive", password("olive"))


def test_tls_to_a_certificate_for_another_name_is_unavailable(ldap_server):
    source = directory(ldap_server.url, start_tls=True, ca_file=ldap_server.ca_file)
    with pytest.raises(DirectoryUnavailable, match=(
            "certificate verify failed: IP address mismatch")):
        source.authenticate("olive", password("olive"))


def test_a_ca_file_that_is_not_there_is_a_configuration_error(ldap_server, tmp_path):
    with pytest.raises(LdapSettingsError, match=r"ca_file: .* cannot be used"):
        directory(ldap_server.url, start_tls=True, ca_file=str(tmp_path / "missing.pem"))
