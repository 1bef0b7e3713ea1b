"""One keep-alive HTTP(S) connection for a sink: send a request, read the answer, and
turn every network failure into a :class:`~engine.connectors.sink.DeliveryFailed`.

A sink is used by one thread at a time, so one connection per sink is enough. Error
text names the destination and what went wrong on the wire, never the message or what
the destination answered: a server may echo the patient data it was sent.
"""

from __future__ import annotations

import http.client
import re
import ssl
from contextlib import suppress
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from engine.connectors import ConnectorError
from engine.connectors.sink import DeliveryFailed
from engine.rules.exception_policy import ErrorClass

__all__ = ["HttpClient", "HttpResponse", "Target"]

KEPT_BODY_BYTES: Final = 64 * 1024
"""How much of an answer's body is kept, for the sinks that read an error's codes."""

DRAINED_BODY_BYTES: Final = 1024 * 1024
"""A longer body is not read to its end: closing the connection is cheaper."""

_READ_SIZE: Final = 16 * 1024
# http.client sends a request line as ASCII and refuses spaces and control characters.
_URL_TEXT: Final = re.compile(r"[!-~]+")

# What a kept-alive connection raises when the server closed it while idle; the
# request never reached a server that would answer it, so it is sent once more.
_STALE: Final = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)

_RETRY_HINT: Final = ("The delivery is retried as its exception policy says; a repeat "
                      "carries the same Idempotency-Key, so the destination can drop it")
_CONNECT_HINT: Final = ("Check that the destination is up, the URL in its catalog entry and any "
                        "firewall or proxy between them; the delivery is retried as its "
                        "exception policy says")
_TLS_HINT: Final = ("Check the destination's certificate (valid, for this host name, from an "
                    "authority the engine's system trusts) and the URL in its catalog entry")


@dataclass(frozen=True)
class Target:
    """Where a catalog URL points: the scheme, the host and port, and the request path."""

    https: bool
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str, where: str) -> Target:
        """Read an http or https URL; anything else is a catalog mistake."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (parts.scheme not in ("http", "https") or not parts.hostname or port == -1
                or not _URL_TEXT.fullmatch(url)):
            raise ConnectorError(f"{where}: the endpoint url is not an http or https URL",
                                 hint="Write it as https://host[:port]/path, with any space "
                                 "or other character outside ASCII percent-encoded")
        if parts.username is not None:  # the catalog is in git: no secret goes there
            raise ConnectorError(f"{where}: the endpoint url holds credentials",
                                 hint="Remove them and name their variable in auth_secret_env")
        https = parts.scheme == "https"
        path = parts.path or "/"
        target = f"{path}?{parts.query}" if parts.query else path
        return cls(https, parts.hostname, port or (443 if https else 80), target)

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class HttpResponse:
    """A server's answer: the status, its reason phrase and the start of the body."""

    status: int
    reason: str
    body: bytes


class HttpClient:
    """Sends requests to one host over one kept connection, opened on first use;
    ``timeout`` bounds the connect and each wait on the socket, in seconds."""

    def __init__(self, target: Target, timeout: float, where: str) -> None:
        self.target = target
        self.timeout = timeout
        self.where = where
        self._connection: http.client.HTTPConnection | None = None
        self._tls: ssl.SSLContext | None = None

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> HttpResponse:
        """Send one request and return the answer, whatever its status. A kept
        connection that the server closed while idle fails before any answer: the
        request is then sent once more, on a new connection, as HTTP clients do."""
        reused = self._is_kept()
        try:
            return self._exchange(method, path, body, headers)
        except _STALE as error:
            self.close()
            if not reused:
                raise self._failure(error) from None
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise self._failure(error) from None
        try:  # the kept connection had been closed by the server: once, on a new one
            return self._exchange(method, path, body, headers)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise self._failure(error) from None

    def close(self) -> None:
        """Close the connection, if open; the next request opens a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(OSError):  # a sink's close never raises
                connection.close()

    def _is_kept(self) -> bool:
        return self._connection is not None and self._connection.sock is not None

    def _exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> HttpResponse:
        connection = self._connected()
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        kept, drained = _read_body(response)
        response.close()
        if not drained:
            self.close()
        return HttpResponse(response.status, response.reason or "", kept)

    def _connected(self) -> http.client.HTTPConnection:
        """The kept connection, or a new one; a failure to connect is a transport error
        even when it is a timeout, because nothing was sent."""
        if self._connection is None:
            self._connection = self._new_connection()
        if self._connection.sock is None:
            try:
                self._connection.connect()
            except OSError as error:
                self.close()
                raise DeliveryFailed(
                    ErrorClass.TRANSPORT_ERROR,
                    f"cannot connect to {self.where}: {_describe(error)}",
                    hint=_TLS_HINT if isinstance(error, ssl.SSLError) else _CONNECT_HINT,
                ) from None
        return self._connection

    def _new_connection(self) -> http.client.HTTPConnection:
        target = self.target
        if not target.https:
            return http.client.HTTPConnection(target.host, target.port, timeout=self.timeout)
        if self._tls is None:  # loads the system's CA certificates: once per sink
            self._tls = ssl.create_default_context()
        return http.client.HTTPSConnection(
            target.host, target.port, timeout=self.timeout, context=self._tls)

    def _failure(self, error: Exception) -> DeliveryFailed:
        """What a failure after connecting means for the delivery."""
        if isinstance(error, TimeoutError):
            return DeliveryFailed(
                ErrorClass.TIMEOUT, f"no answer from {self.where} within {self.timeout:g} s",
                hint="The destination may have kept the message. " + _RETRY_HINT)
        if isinstance(error, http.client.RemoteDisconnected):
            what = "closed the connection without answering"
        elif isinstance(error, http.client.HTTPException):
            what = f"answered with something that is not HTTP ({type(error).__name__})"
        else:
            what = f"broke the connection: {_describe(error)}"
        return DeliveryFailed(ErrorClass.TRANSPORT_ERROR, f"{self.where} {what}",
                              hint=_RETRY_HINT)


def _read_body(response: http.client.HTTPResponse) -> tuple[bytes, bool]:
    """The body's first bytes, and whether it was read to its end so that the
    connection can carry the next request. The status has already answered the
    request, so a body that breaks off only costs the connection."""
    kept = bytearray()
    seen = 0
    try:
        while seen <= DRAINED_BODY_BYTES:
            chunk = response.read(_READ_SIZE)
            if not chunk:
                return bytes(kept), True
            seen += len(chunk)
            kept += chunk[: KEPT_BODY_BYTES - len(kept)]
    except (OSError, http.client.HTTPException):
        pass
    return bytes(kept), False


def _describe(error: Exception) -> str:
    """The system's words for a socket error (``Connection refused``); they name no data."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__
