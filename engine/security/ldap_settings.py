"""The LDAP identity source's configuration: typed, declared and checked as a whole when
it is read, so a mistake is reported when Switchboard starts, not at someone's sign-in.

A user is found in one of two ways: by a DN template (``user_dn_template``), or by a
search made with a service account (``user_search_base`` with ``bind_dn``), whose
password is read from the environment variable that ``bind_password_env`` names: the
secret itself never sits in configuration.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import escape_rdn, parse_dn

from engine.errors import SwitchboardError
from engine.security.roles import Role

GROUP_MODES = ("member", "memberOf")
ENVIRONMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
LONGEST_TIMEOUT = 300  # seconds; beyond this a sign-in page has long been abandoned


class LdapSettingsError(SwitchboardError):
    """The LDAP configuration cannot be used as written; the message names the setting."""


def _doc(description: str, example: object) -> dict[str, object]:
    return {"description": description, "example": example}


@dataclass(frozen=True)
class LdapUrl:
    """One directory server, from an ``ldap://`` or ``ldaps://`` URL."""

    host: str
    port: int
    ldaps: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'ldaps' if self.ldaps else 'ldap'}://{host}:{self.port}"


@dataclass(frozen=True)
class LdapSettings:
    """Where the directory is, how a user is found and bound, and which groups give
    which roles. Build it with :meth:`from_mapping`; direct construction is checked too."""

    urls: tuple[LdapUrl, ...] = field(metadata=_doc(
        "The directory servers, tried in order until one answers (key 'url' for one, "
        "'urls' for several); ldaps:// for TLS from the first byte",
        ["ldaps://ldap1.example.org", "ldaps://ldap2.example.org:636"]))
    group_roles: Mapping[str, Role] = field(metadata=_doc(
        "Which directory group gives which Switchboard role: a group's DN or its cn "
        "(compared without regard to case); a user in no listed group cannot sign in",
        {"cn=switchboard-admins,ou=groups,dc=example,dc=org": "admin",
         "switchboard-operators": "operator"}))
    user_dn_template: str | None = field(default=None, metadata=_doc(
        "The DN a user binds as, with {username} where the (escaped) user name goes; "
        "leave out to find users by search instead",
        "uid={username},ou=people,dc=example,dc=org"))
    user_search_base: str | None = field(default=None, metadata=_doc(
        "Where users are searched for (subtree), by the service account; leave out to "
        "use user_dn_template instead", "ou=people,dc=example,dc=org"))
    user_search_filter: str = field(default="(uid={username})", metadata=_doc(
        "The filter that finds exactly one user, with {username} where the (escaped) "
        "user name goes", "(&(objectClass=inetOrgPerson)(uid={username}))"))
    bind_dn: str | None = field(default=None, metadata=_doc(
        "The service account that searches for users (with user_search_base)",
        "cn=switchboard,ou=services,dc=example,dc=org"))
    bind_password_env: str | None = field(default=None, metadata=_doc(
        "The name of the environment variable holding the service account's password "
        "(never the password itself)", "SWITCHBOARD_LDAP_BIND_PASSWORD"))
    username_attribute: str = field(default="uid", metadata=_doc(
        "The attribute whose value Switchboard records as the user's name, so one "
        "person has one name however they typed it", "uid"))
    group_mode: Literal["member", "memberOf"] = field(default="member", metadata=_doc(
        "How groups are found: 'member' searches groupOfNames entries under "
        "group_search_base naming the user as member; 'memberOf' reads the user's "
        "memberOf attribute", "member"))
    group_search_base: str | None = field(default=None, metadata=_doc(
        "Where groupOfNames entries are searched for (group_mode 'member' only)",
        "ou=groups,dc=example,dc=org"))
    start_tls: bool = field(default=False, metadata=_doc(
        "Upgrade an ldap:// connection to TLS before binding (not with ldaps://)", True))
    ca_file: str | None = field(default=None, metadata=_doc(
        "PEM file of the CA that signed the directory's certificate; the system's CAs "
        "when left out", "/etc/ssl/certs/directory-ca.pem"))
    # Whole seconds: ldap3 2.9.1 sets the receive timeout with struct.pack("LL", ...),
    # which fails on a float.
    connect_timeout: int = field(default=5, metadata=_doc(
        "Whole seconds to wait for a server to accept the connection before trying the "
        "next", 5))
    receive_timeout: int = field(default=10, metadata=_doc(
        "Whole seconds to wait for an answer to each request before giving up on the "
        "server", 10))

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise LdapSettingsError("; ".join(problems))

    @property
    def searches_users(self) -> bool:
        """True when users are found by a search (with the service account)."""
        return self.user_search_base is not None

    @property
    def uses_tls(self) -> bool:
        return self.start_tls or any(url.ldaps for url in self.urls)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> LdapSettings:
        """The settings from a configuration mapping (YAML, the instance file); unknown
        keys and values of the wrong kind are refused with the key they concern."""
        known = {item.name for item in fields(cls)} | {"url"}
        for key in raw:
            if key not in known:
                raise LdapSettingsError(_unknown_key(str(key), known))
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key in {"url", "urls", "group_roles"}:
                continue
            values[key] = _READERS[key](key, value)
        values["urls"] = _urls(raw)
        values["group_roles"] = _group_roles(raw.get("group_roles"))
        return cls(**values)


def parse_url(url: str, key: str = "url") -> LdapUrl:
    """A server from its URL. A trailing slash (the empty DN RFC 4516 allows) is dropped;
    a DN, a query or credentials in the URL are refused, since none would be used."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as problem:
        raise LdapSettingsError(f"{key}: {url!r} is not a URL ({problem})") from None
    if parts.scheme not in {"ldap", "ldaps"}:
        raise LdapSettingsError(f"{key}: {url!r} must start with ldap:// or ldaps://")
    if not parts.hostname:
        raise LdapSettingsError(f"{key}: {url!r} names no server")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise LdapSettingsError(
            f"{key}: {url!r} has more than a server in it; write ldap://host:port and "
            "put search bases in user_search_base and group_search_base")
    if parts.username is not None or parts.password is not None:
        raise LdapSettingsError(
            f"{key}: {url!r} carries credentials; use bind_dn and bind_password_env")
    ldaps = parts.scheme == "ldaps"
    return LdapUrl(parts.hostname, port or (636 if ldaps else 389), ldaps)


def _urls(raw: Mapping[str, Any]) -> tuple[LdapUrl, ...]:
    if ("url" in raw) == ("urls" in raw):
        raise LdapSettingsError("url: give the directory's URL in 'url', or several in 'urls'")
    if "url" in raw:
        return (parse_url(_text("url", raw["url"])),)
    listed = raw["urls"]
    if not isinstance(listed, list | tuple) or not listed:
        raise LdapSettingsError("urls: must be a list of one or more ldap:// or ldaps:// URLs")
    return tuple(parse_url(_text(f"urls[{n}]", url), f"urls[{n}]")
                 for n, url in enumerate(listed))


def _group_roles(raw: object) -> Mapping[str, Role]:
    if not isinstance(raw, Mapping) or not raw:
        raise LdapSettingsError(
            "group_roles: must map at least one group (its DN or cn) to a role; "
            "without it nobody could sign in")
    roles: dict[str, Role] = {}
    for group, role in raw.items():
        name = _text(f"group_roles[{group!r}]", group)
        try:
            roles[name] = Role(role)
        except ValueError:
            raise LdapSettingsError(_unknown_role(name, role)) from None
    return MappingProxyType(roles)


def _unknown_role(group: str, role: object) -> str:
    names = [item.value for item in Role]
    close = difflib.get_close_matches(str(role), names, n=1)
    also = f"; did you mean {close[0]!r}?" if close else ""
    return (f"group_roles[{group!r}]: {role!r} is not a role "
            f"(roles: {', '.join(names)}){also}")


def _unknown_key(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    also = f" Did you mean {close[0]}?" if close else ""
    return f"{key}: not an LDAP setting.{also} Settings: {', '.join(sorted(known))}"


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LdapSettingsError(f"{key}: must be non-empty text, not {value!r}")
    return value.strip()


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise LdapSettingsError(f"{key}: must be true or false, not {value!r}")
    return value


def _seconds(key: str, value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LdapSettingsError(f"{key}: must be a whole number of seconds, not {value!r}")
    return value


_READERS = {
    "user_dn_template": _text, "user_search_base": _text, "user_search_filter": _text,
    "bind_dn": _text, "bind_password_env": _text, "username_attribute": _text,
    "group_mode": _text, "group_search_base": _text, "start_tls": _flag, "ca_file": _text,
    "connect_timeout": _seconds, "receive_timeout": _seconds,
}


def _problems(settings: LdapSettings) -> list[str]:
    """Every reason the settings cannot work."""
    return [*_server_problems(settings), *_user_problems(settings),
            *_group_problems(settings), *_dn_problems(settings)]


def _server_problems(settings: LdapSettings) -> list[str]:
    if not settings.urls or not all(isinstance(url, LdapUrl) for url in settings.urls):
        return ["urls: one or more servers (LdapUrl), read with parse_url"]
    problems = []
    if settings.start_tls and any(url.ldaps for url in settings.urls):
        problems.append("start_tls: ldaps:// is TLS already; use one or the other")
    if settings.ca_file is not None and not settings.uses_tls:
        problems.append("ca_file: only used with start_tls or an ldaps:// URL")
    for key in ("connect_timeout", "receive_timeout"):
        seconds = getattr(settings, key)
        if isinstance(seconds, bool) or not isinstance(seconds, int) \
                or not 0 < seconds <= LONGEST_TIMEOUT:
            problems.append(f"{key}: must be a whole number of seconds from 1 to "
                            f"{LONGEST_TIMEOUT}, not {seconds!r}")
    return problems


def _user_problems(settings: LdapSettings) -> list[str]:
    template, base = settings.user_dn_template, settings.user_search_base
    if (template is None) == (base is None):
        return ["user_dn_template: give either user_dn_template (bind by DN) or "
                "user_search_base with bind_dn and bind_password_env (search, then bind)"]
    if template is not None:
        service = [key for key in ("bind_dn", "bind_password_env")
                   if getattr(settings, key) is not None]
        return [f"{key}: only used with user_search_base" for key in service] + \
            _placeholder_problems("user_dn_template", template)
    problems = [f"{key}: needed to search for users under user_search_base"
                for key in ("bind_dn", "bind_password_env") if getattr(settings, key) is None]
    env = settings.bind_password_env
    if env is not None and not ENVIRONMENT_NAME.fullmatch(env):
        problems.append("bind_password_env: must name an environment variable "
                        "(letters, digits, _), never hold the password itself")
    search = settings.user_search_filter
    problems += _placeholder_problems("user_search_filter", search)
    if not _balanced_filter(search):
        problems.append(f"user_search_filter: {search!r} is not an LDAP filter "
                        "(one parenthesised expression)")
    return problems


def _group_problems(settings: LdapSettings) -> list[str]:
    problems = []
    if settings.group_mode not in GROUP_MODES:
        close = difflib.get_close_matches(settings.group_mode, GROUP_MODES, n=1)
        also = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(f"group_mode: must be 'member' or 'memberOf', "
                        f"not {settings.group_mode!r}{also}")
    if settings.group_mode == "member" and settings.group_search_base is None:
        problems.append("group_search_base: needed to find groups by member")
    if settings.group_mode == "memberOf" and settings.group_search_base is not None:
        problems.append("group_search_base: not used with group_mode 'memberOf'")
    if not settings.group_roles:
        problems.append("group_roles: must map at least one group to a role; "
                        "without it nobody could sign in")
    for group, role in settings.group_roles.items():
        if not isinstance(role, Role):
            problems.append(f"group_roles[{group!r}]: {role!r} is not a Role")
        if "=" in group and not _is_dn(group):
            problems.append(f"group_roles[{group!r}]: is neither a DN nor a cn")
    if not ATTRIBUTE_NAME.fullmatch(settings.username_attribute):
        problems.append(f"username_attribute: {settings.username_attribute!r} "
                        "is not an attribute name")
    return problems


def _dn_problems(settings: LdapSettings) -> list[str]:
    return [f"{key}: {value!r} is not a DN" for key in
            ("bind_dn", "user_search_base", "group_search_base")
            if (value := getattr(settings, key)) is not None and not _is_dn(value)]


def _placeholder_problems(key: str, template: str) -> list[str]:
    try:
        sample = template.format(username="someone")
    except (KeyError, IndexError, ValueError):
        return [f"{key}: {template!r} may hold only the placeholder {{username}}"]
    if sample == template:
        return [f"{key}: {template!r} has no {{username}} placeholder"]
    if key == "user_dn_template" and not _is_dn(template.format(username=escape_rdn("x"))):
        return [f"{key}: {template!r} does not make a DN"]
    return []


def _is_dn(text: str) -> bool:
    try:
        parse_dn(text)
    except (LDAPInvalidDnError, IndexError):
        return False
    return True


def _balanced_filter(text: str) -> bool:
    depth = 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0 or (depth == 0 and position < len(text) - 1):
            return False
    return text.startswith("(") and depth == 0
