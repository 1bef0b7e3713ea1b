"""Sign-in against an LDAP directory, through ldap3: a simple bind as the user, found by
a DN template or by a service account's search, then the user's groups.

Only a bind with the user's own, non-empty password vouches for them: an empty password
is refused before anything is sent, since LDAP would take it as an anonymous bind and
answer "success". When no server answers, sign-in fails with
:class:`DirectoryUnavailable`; nothing falls back to letting anyone in.
"""

from __future__ import annotations

import ast
import logging
import os
import socket
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPException,
    LDAPInvalidDnError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from engine.errors import SwitchboardError
from engine.security.group_roles import roles_for_groups
from engine.security.ldap_settings import LdapSettings, LdapSettingsError, LdapUrl

__all__ = ["Directory", "DirectoryRefused", "DirectoryUnavailable", "DirectoryUser",
           "LdapSettings", "LdapSettingsError", "roles_for_groups"]

log = logging.getLogger(__name__)

SOURCE = "ldap"  # Principal.source for the users this source vouches for
LONGEST_USERNAME = 256
# Bind answers that mean "these credentials are no good", as opposed to a directory
# that is busy, shutting down or misbehaving: invalidCredentials, invalidDNSyntax,
# noSuchObject, inappropriateAuthentication, insufficientAccessRights, unwillingToPerform.
REFUSALS = {49, 34, 32, 48, 50, 53}
REFUSED = "the user name or password is not correct"
UNAVAILABLE_HINT = ("Nobody can sign in through the directory until it answers; check "
                    "that the directory server is running and that Switchboard can reach it")


class DirectoryRefused(SwitchboardError):
    """The directory does not vouch for these credentials. The message never says why,
    so a caller cannot tell a wrong password from an unknown user; ``why`` does, for
    the audit trail (it holds no secret)."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(REFUSED)


class DirectoryUnavailable(SwitchboardError):
    """No directory server could be asked (down, unreachable, timed out, refusing TLS
    or the service account): sign-in is impossible for now, and refused."""


class _ServerFailed(Exception):
    """One server could not answer; the next one is tried."""


@dataclass(frozen=True)
class _Server:
    """One address of a configured server: ldap3 is given addresses one by one, since
    it leaves the socket of each address it fails to connect to open (2.9.1)."""

    name: LdapUrl
    address: str

    def __str__(self) -> str:
        return str(self.name) if self.address == self.name.host else \
            f"{self.name} at {self.address}"


@dataclass(frozen=True)
class DirectoryUser:
    """A user the directory vouched for: their name as the directory spells it, their
    entry's DN and the DNs of the groups they belong to."""

    username: str
    dn: str
    groups: frozenset[str]


class Directory:
    """The LDAP identity source. Safe to share between threads: each sign-in opens its
    own connections and closes them before returning."""

    def __init__(self, settings: LdapSettings,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._tls = _tls_context(settings)
        self._service_password: str | None = None
        if settings.searches_users:
            name = str(settings.bind_password_env)
            self._service_password = (os.environ if environ is None else environ).get(name)
            if not self._service_password:
                raise LdapSettingsError(
                    f"bind_password_env: the environment variable {name} is not set or is "
                    "empty; it must hold the service account's password")

    def authenticate(self, username: str, password: str) -> DirectoryUser:
        """The user these credentials belong to; :class:`DirectoryRefused` when the
        directory does not vouch for them, :class:`DirectoryUnavailable` when no server
        answers. Servers are tried in order until one answers."""
        if not username or not username.strip() or len(username) > LONGEST_USERNAME:
            raise DirectoryRefused("no usable user name")
        if not password:
            raise DirectoryRefused("empty password")
        failures = []
        for url in self.settings.urls:
            try:
                for server in _servers(url):
                    try:
                        return self._authenticate_at(server, username, password)
                    except _ServerFailed as failure:
                        log.warning("LDAP server %s did not answer: %s", server, failure)
                        failures.append(f"{server} ({failure})")
            except _ServerFailed as failure:
                log.warning("LDAP server %s cannot be found: %s", url, failure)
                failures.append(f"{url} ({failure})")
        raise DirectoryUnavailable(
            f"the directory cannot be asked: {'; '.join(failures)}", hint=UNAVAILABLE_HINT)

    def _authenticate_at(self, url: _Server, username: str, password: str) -> DirectoryUser:
        settings = self.settings
        if not settings.searches_users:
            dn = str(settings.user_dn_template).format(username=escape_rdn(username))
            with self._bound(url, dn, password, as_user=True) as connection:
                return self._user(connection, dn, username)
        with self._bound(url, str(settings.bind_dn), str(self._service_password),
                         as_user=False) as service:
            dn = self._find(service, username)
            with self._bound(url, dn, password, as_user=True):
                pass
            return self._user(service, dn, username)

    @contextmanager
    def _bound(self, url: _Server, dn: str, password: str,
               as_user: bool) -> Iterator[Connection]:
        """A connection to ``url`` bound as ``dn``, closed on the way out."""
        tls = _VerifiedTls(self._tls, url.name.host) if self._tls is not None else None
        server = Server(url.address, port=url.name.port, use_ssl=url.name.ldaps, tls=tls,
                        get_info=NONE, connect_timeout=self.settings.connect_timeout)
        connection = Connection(server, user=dn, password=password, read_only=True,
                                auto_referrals=False, raise_exceptions=False,
                                receive_timeout=self.settings.receive_timeout)
        try:
            bound = self._bind(connection)
            if not bound and as_user:
                raise DirectoryRefused(_refusal(connection.result))
            if not bound:
                raise _ServerFailed("the service account bind_dn was refused: "
                                    f"{_result(connection.result)}; check bind_dn and the "
                                    f"password in {self.settings.bind_password_env}")
            yield connection
        except (LDAPCommunicationError, LDAPStartTLSError) as problem:
            raise _ServerFailed(_short(problem)) from None
        except LDAPInvalidDnError:
            raise DirectoryRefused("not a DN") from None
        finally:
            _close(connection)

    def _bind(self, connection: Connection) -> bool:
        connection.open()
        if self.settings.start_tls and not connection.start_tls():
            raise _ServerFailed(f"StartTLS refused: {_result(connection.result)}")
        bound = connection.bind()
        code = connection.result.get("result")
        if not bound and code not in REFUSALS:
            raise _ServerFailed(f"bind failed: {_result(connection.result)}")
        return bool(bound)

    def _find(self, service: Connection, username: str) -> str:
        """The DN of the one user the search filter finds; refused for none or several
        (binding as one of several could let a namesake in)."""
        search = self.settings.user_search_filter.format(
            username=escape_filter_chars(username))
        entries = self._search(service, str(self.settings.user_search_base), search,
                               SUBTREE, ["1.1"], size_limit=2)
        if len(entries) != 1:
            raise DirectoryRefused("unknown user" if not entries else "several users match")
        return str(entries[0]["dn"])

    def _user(self, connection: Connection, dn: str, username: str) -> DirectoryUser:
        name_attribute = self.settings.username_attribute
        by_member_of = self.settings.group_mode == "memberOf"
        wanted = [name_attribute, "memberOf"] if by_member_of else [name_attribute]
        entries = self._search(connection, dn, "(objectClass=*)", BASE, wanted)
        if not entries:
            raise _ServerFailed(f"the entry {dn} cannot be read after its bind; check the "
                                "directory's access rules")
        dn = str(entries[0]["dn"])  # as the directory spells it, not as it was typed
        attributes = entries[0]["attributes"]
        names = _values(attributes, name_attribute)
        if by_member_of:
            groups = _values(attributes, "memberOf")
        else:
            found = self._search(connection, str(self.settings.group_search_base),
                                 f"(&(objectClass=groupOfNames)(member={escape_filter_chars(dn)}))",
                                 SUBTREE, ["1.1"])
            groups = [str(entry["dn"]) for entry in found]
        # Of several names (uid is multi-valued), the one typed, else the first given.
        name = next((n for n in names if n.lower() == username.lower()), None) or \
            next(iter(names), username)
        return DirectoryUser(name, dn, frozenset(groups))

    def _search(self, connection: Connection, base: str, search: str, scope: str,
                attributes: list[str], size_limit: int = 0) -> list[dict[str, object]]:
        """The entries found; none when the base does not exist (noSuchObject) or a size
        limit cut the answer (the caller's limit says what it needed)."""
        connection.search(base, search, scope, attributes=attributes, size_limit=size_limit)
        code = connection.result.get("result")
        if code not in {0, 4, 32}:  # success, sizeLimitExceeded, noSuchObject
            raise _ServerFailed(f"search under {base} failed: {_result(connection.result)}")
        return [entry for entry in connection.response or []
                if entry.get("type") == "searchResEntry"]


def _close(connection: Connection) -> None:
    with suppress(LDAPException, OSError):
        connection.unbind()
    # ldap3 2.9.1 leaves the socket of a failed connect or TLS handshake open: its
    # close() skips a connection it never marked open.
    if connection.socket is not None:
        connection.socket.close()


def _servers(url: LdapUrl) -> list[_Server]:
    try:
        found = socket.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
    except OSError as problem:
        raise _ServerFailed(f"{url.host} cannot be resolved: {problem}") from None
    return [_Server(url, str(address)) for address in dict.fromkeys(
        info[4][0] for info in found)]


class _VerifiedTls(Tls):  # type: ignore[misc]
    """TLS that checks the server's certificate and its name with Python's own checks:
    ldap3 2.9.1 turns the context's name check off and calls ssl.match_hostname,
    deprecated since Python 3.7 and gone in 3.12."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self._context = context
        self._host = host

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket, server_hostname=self._host,
            do_handshake_on_connect=do_handshake)


def _tls_context(settings: LdapSettings) -> ssl.SSLContext | None:
    if not settings.uses_tls:
        return None
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as problem:
        raise LdapSettingsError(f"ca_file: {settings.ca_file!r} cannot be used "
                                f"({problem})") from None


def _values(attributes: object, name: str) -> list[str]:
    """An attribute's values from an answer, whatever the case the server spelled it in."""
    if not isinstance(attributes, Mapping):
        return []
    for key, value in attributes.items():
        if str(key).lower() == name.lower():
            return [str(item) for item in value] if isinstance(value, list) else [str(value)]
    return []


def _refusal(result: Mapping[str, object]) -> str:
    reasons: dict[object, str] = {49: "wrong password or unknown user",
                                  50: "not allowed to bind", 53: "the directory is unwilling"}
    return reasons.get(result.get("result"), "not a user")


def _result(result: Mapping[str, object]) -> str:
    message = str(result.get("message") or "").strip()
    described = f"{result.get('description')} ({result.get('result')})"
    return f"{described}: {message}" if message else described


def _short(problem: Exception) -> str:
    """ldap3's words for a failure, which it wraps in a tuple's repr once per layer."""
    text = str(problem).strip()
    while text.startswith("(") and text.endswith(",)"):
        try:
            inner = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            break
        text = str(inner[0]).strip()
    if "CERTIFICATE_VERIFY_FAILED" in text:
        text = f"its certificate is refused (check ca_file and the URL's host name): {text}"
    return text[:300] or type(problem).__name__
