"""The HL7 v2 paths the message log can search by value: configuration, read from
``SWITCHBOARD_INDEXED_PATHS`` (paths separated by commas or spaces), by default
``OBX-3.1, PV1-3.1, MSH-4``. Set the same value for the engine and web processes: the
pipeline keys the values when it parses a message, the web process searches them.
Messages already routed keep the keys of the paths indexed when they were routed.

An indexed path is searched as a field, not as one position: a path that names no
occurrence of its segment covers every one (``OBX-3.1`` finds a code in any OBX, as
``OBX[*]-3.1`` would), and every repetition of its field counts. A message holding a
value in several places has it once. ``OBX[2]-3.1`` is only the second OBX.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.errors import PathError
from engine.hl7v2 import ALL, Message, parse_path
from engine.lookup_keys import KIND_LENGTH, lookup_key, path_kind

SETTING = "SWITCHBOARD_INDEXED_PATHS"
DEFAULT = ("OBX-3.1", "PV1-3.1", "MSH-4")
_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class IndexedPath:
    name: str  # as it is searched for: OBX-3.1
    kind: str  # its keys' kind: path:OBX-3.1
    read: str  # as it is read from a message: OBX[*]-3.1


class IndexedPaths:
    """The configured paths, checked: each names a field."""

    def __init__(self, paths: Iterable[str] = DEFAULT) -> None:
        found: dict[str, IndexedPath] = {}
        for text in paths:
            path = indexed_path(text)
            found.setdefault(path.name, path)
        self._paths = found

    @classmethod
    def configured(cls, environ: Mapping[str, str] = os.environ) -> IndexedPaths:
        """The paths ``SWITCHBOARD_INDEXED_PATHS`` names, else the default; PathError
        naming the setting when one is not a path."""
        setting = environ.get(SETTING)
        if setting is None:
            return cls()
        try:
            return cls(part for part in _SEPARATORS.split(setting) if part)
        except PathError as error:
            raise PathError(f"{SETTING}: {error.reason}", hint=error.hint) from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._paths)

    def kind_of(self, path: str) -> str | None:
        """The kind of the keys of ``path`` (written any way that means the same), or
        None when it is not indexed."""
        try:
            found = self._paths.get(indexed_path(path).name)
        except PathError:
            return None
        return found.kind if found else None

    def keys(self, message: Message) -> list[tuple[str, str]]:
        """(kind, key) for each distinct value at each indexed path of ``message``."""
        keys = []
        for path in self._paths.values():
            for value in dict.fromkeys(message.get_all(path.read)):
                if value:
                    keys.append((path.kind, lookup_key(path.kind, value)))
        return keys


def indexed_path(text: str) -> IndexedPath:
    """``text`` as an indexed path; PathError when it is not an HL7 path naming a
    field, or is too long to be a key's kind."""
    path = parse_path(text)
    if path.field is None:
        raise PathError(f"{text!r} names a segment, not a field",
                        hint="Index a field or a component, e.g. OBX-3.1 or PV1-3")
    every = path._replace(occurrence=ALL) if path.occurrence is None else path
    name = str(path._replace(occurrence=None) if path.occurrence == ALL else path)
    if len(path_kind(name)) > KIND_LENGTH:
        raise PathError(f"{text!r} is too long for an indexed path",
                        hint=f"Write it in at most {KIND_LENGTH - len(path_kind(''))} "
                             "characters")
    return IndexedPath(name, path_kind(name), str(every))
