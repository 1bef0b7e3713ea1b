"""Typed values out of parsed rule documents (catalog entries, exception policies), with
errors that say where in the document a value is wrong.

Each kind of document raises its own error class, so that callers and the linter can tell
which file is at fault; a :class:`DocumentReader` is bound to one. Pure: documents arrive
parsed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from engine.errors import SwitchboardError
from engine.rules.duration import DurationError, parse_duration

IDENTIFIER = re.compile(r"[a-z0-9-]+")
"""How ids are written (documents, connections, tags): lower-case letters, digits, hyphens."""

_E = TypeVar("_E", bound=StrEnum)


class DocumentReader:
    """Readers for one kind of document; each raises ``error`` prefixed with ``where``."""

    def __init__(self, error: type[SwitchboardError]) -> None:
        self.error = error

    def mapping(self, value: object, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(f"{where}: expected a mapping, got {type(value).__name__}")
        return value

    def check_keys(
        self, raw: Mapping[str, Any], required: Sequence[str], optional: Sequence[str],
        where: str,
    ) -> None:
        """Refuse missing and unknown keys: a misspelt key must not read as an optional
        one left out (``data_scopes`` as an entry that may carry nothing, a misspelt owner
        as no owner, ``max_atempts`` as a default that retries for days)."""
        missing = [key for key in required if key not in raw]
        if missing:
            raise self.error(f"{where}: missing {', '.join(missing)}")
        unknown = [str(key) for key in raw if key not in required and key not in optional]
        if unknown:
            raise self.error(
                f"{where}: unknown key {', '.join(map(repr, unknown))}",
                hint=f"Allowed keys: {', '.join((*required, *optional))}",
            )

    def identifier(self, raw: Mapping[str, Any], where: str) -> str:
        """The document's ``id``, which names it in every later error."""
        value = raw.get("id")
        if not isinstance(value, str) or IDENTIFIER.fullmatch(value) is None:
            raise self.error(
                f"{where}: id {value!r} is not lower-case letters, digits and hyphens"
            )
        return value

    def choice(self, value: object, choices: Sequence[str], where: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise self.error(f"{where}: {value!r} is not one of {', '.join(choices)}")
        return value

    def enum(self, kind: type[_E], value: object, where: str) -> _E:
        return kind(self.choice(value, [member.value for member in kind], where))

    def integer(self, value: object, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{where}: {value!r} is not a whole number")
        return value

    def boolean(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(f"{where}: {value!r} is not true or false")
        return value

    def duration(self, value: object, where: str) -> float:
        try:
            return parse_duration(value)
        except DurationError as err:
            raise self.error(f"{where}: {err.reason}", hint=err.hint) from None
