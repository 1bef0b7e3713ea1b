"""The command line's way to the REST API: JSON over HTTP with a user's API token, so
a command acts as that user and the server checks what they may do, as it does for
every other client.

The token comes from ``$SWITCHBOARD_TOKEN`` or a file (``--token-file``, or
``$SWITCHBOARD_TOKEN_FILE``), never from the command line, where other users of the
machine could read it in the process list."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import SwitchboardError

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 60.0


class ApiError(SwitchboardError):
    """The server refused the request, or could not be reached."""

    def __init__(self, status: int, message: str, *, hint: str | None = None,
                 body: dict[str, Any] | None = None) -> None:
        self.status = status
        self.body = body or {}
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class ApiClient:
    url: str
    token: str

    @classmethod
    def configured(cls, url: str | None, token_file: Path | None) -> ApiClient:
        base = (url or os.environ.get("SWITCHBOARD_URL") or DEFAULT_URL).rstrip("/")
        return cls(base, _token(token_file))

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, body or {})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise _refusal(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(0, f"cannot reach Switchboard at {self.url}: {reason}",
                           hint="Start it (switchboard serve), or set --url or "
                                "$SWITCHBOARD_URL") from None


def _refusal(error: urllib.error.HTTPError) -> ApiError:
    try:
        body = json.loads(error.read() or b"{}")
    except ValueError:
        body = {}
    reason = str(body.get("reason") or error.reason)
    hint = body.get("hint")
    # The server's reason already ends with its hint when it has one: say it once.
    if hint and reason.endswith(str(hint)):
        hint = None
    return ApiError(error.code, f"{error.code} {body.get('error') or error.reason}: {reason}",
                    hint=hint, body=body)


def _token(token_file: Path | None) -> str:
    named = token_file or (Path(os.environ["SWITCHBOARD_TOKEN_FILE"])
                           if os.environ.get("SWITCHBOARD_TOKEN_FILE") else None)
    token = named.read_text(encoding="utf-8").strip() if named else os.environ.get(
        "SWITCHBOARD_TOKEN", "").strip()
    if not token:
        raise ApiError(0, "no API token", hint="Set $SWITCHBOARD_TOKEN, or name a file "
                       "holding it with --token-file; `switchboard users add` issues one")
    return token
